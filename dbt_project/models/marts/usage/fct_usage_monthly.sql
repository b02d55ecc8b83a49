-- depends_on: {{ ref('stg_raw__usage_events') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'meter', 'month'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['tenant_id', 'meter', 'month'], 'unique': True},
            {'columns': ['month']},
        ],
    )
}}

{#- Rolled up from fct_usage_daily for sum, count, max (the month's peak is the maximum of the
    daily peaks; peaks are never summed) and last; unique counts are the distinct values over
    all hours of the month, never a sum of daily counts. -#}

with

meters as (
    select * from {{ ref('stg_meterline__meters') }}
),

{% if is_incremental() -%}
changed_months as (
    {{ usage_changed_periods('month') }}
),

daily as (
    select d.*
    from changed_months as c
    cross join lateral (
        select * from {{ ref('fct_usage_daily') }}
        where day >= (c.period_start at time zone 'UTC')::date
          and day < ((c.period_start + interval '1 month') at time zone 'UTC')::date
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as d
),

unique_values as (
    select v.*
    from changed_months as c
    cross join lateral (
        select * from {{ ref('int_usage_values_deduplicated') }}
        where hour >= c.period_start and hour < c.period_start + interval '1 month'
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as v
),
{%- else -%}
daily as (
    select * from {{ ref('fct_usage_daily') }}
),

unique_values as (
    select * from {{ ref('int_usage_values_deduplicated') }}
),
{%- endif %}

distinct_counts as (
    select
        tenant_id,
        meter,
        (date_trunc('month', hour, 'UTC') at time zone 'UTC')::date as month,
        count(distinct dimension_value)::numeric as distinct_count
    from unique_values
    group by 1, 2, 3
),

rolled as (
    select
        daily.tenant_id,
        daily.meter,
        date_trunc('month', daily.day)::date as month,
        meters.aggregation,
        sum(daily.quantity) as sum_quantity,
        max(daily.quantity) as max_quantity,
        (array_agg(daily.quantity order by daily.day desc))[1] as last_quantity,
        sum(daily.event_count)::bigint as event_count,
        max(daily.max_loaded_at) as max_loaded_at
    from daily
    inner join meters on meters.meter = daily.meter
    group by 1, 2, 3, 4
),

final as (
    select
        rolled.tenant_id,
        rolled.meter,
        rolled.month,
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
        and distinct_counts.month = rolled.month
)

select * from final
