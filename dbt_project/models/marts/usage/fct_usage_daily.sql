-- depends_on: {{ ref('stg_raw__usage_events') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'meter', 'day'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['tenant_id', 'meter', 'day'], 'unique': True},
            {'columns': ['day']},
        ],
    )
}}

{#- Rolled up from fct_usage_hourly (sums and counts added, peaks maxed, the last hour's value
    for 'last'); unique counts are the distinct values over the day's hours. -#}

with

meters as (
    select * from {{ ref('stg_meterline__meters') }}
),

{% if is_incremental() -%}
changed_days as (
    {{ usage_changed_periods('day') }}
),

hourly as (
    select h.*
    from changed_days as c
    cross join lateral (
        select * from {{ ref('fct_usage_hourly') }}
        where hour >= c.period_start and hour < c.period_start + interval '1 day'
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as h
),

unique_values as (
    select v.*
    from changed_days as c
    cross join lateral (
        select * from {{ ref('int_usage_values_deduplicated') }}
        where hour >= c.period_start and hour < c.period_start + interval '1 day'
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as v
),
{%- else -%}
hourly as (
    select * from {{ ref('fct_usage_hourly') }}
),

unique_values as (
    select * from {{ ref('int_usage_values_deduplicated') }}
),
{%- endif %}

distinct_counts as (
    select
        tenant_id,
        meter,
        (hour at time zone 'UTC')::date as day,
        count(distinct dimension_value)::numeric as distinct_count
    from unique_values
    group by 1, 2, 3
),

rolled as (
    select
        hourly.tenant_id,
        hourly.meter,
        (hourly.hour at time zone 'UTC')::date as day,
        meters.aggregation,
        sum(hourly.quantity) as sum_quantity,
        max(hourly.quantity) as max_quantity,
        (array_agg(hourly.quantity order by hourly.hour desc))[1] as last_quantity,
        sum(hourly.event_count)::bigint as event_count,
        max(hourly.max_loaded_at) as max_loaded_at
    from hourly
    inner join meters on meters.meter = hourly.meter
    group by 1, 2, 3, 4
),

final as (
    select
        rolled.tenant_id,
        rolled.meter,
        rolled.day,
        {{ rolled_up_quantity(
            'rolled.aggregation', 'rolled.sum_quantity', 'rolled.max_quantity',
            'rolled.last_quantity', 'distinct_counts.distinct_count'
        ) }} as quantity,
        rolled.event_count,
        rolled.max_loaded_at
    from rolled
    left join distinct_counts
        on distinct_counts.tenant_id = rolled.tenant_id
        and distinct_counts.meter = rolled.meter
        and distinct_counts.day = rolled.day
)

select * from final
