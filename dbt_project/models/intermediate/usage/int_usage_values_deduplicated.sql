-- depends_on: {{ ref('stg_raw__usage_events') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'meter', 'hour'],
        on_schema_change='append_new_columns',
        pre_hook="set work_mem = '256MB'",
        indexes=[
            {'columns': ['tenant_id', 'meter', 'hour']},
            {'columns': ['hour']},
        ],
    )
}}

{#- Distinct values of each unique_count meter's dimension per tenant and UTC hour, with the
    number of events carrying each (events without the dimension: one row with a null value).
    Hourly, daily and monthly unique counts are counted from here, so an incremental run reads
    only the changed hours' events and a month's unique users are the distinct values over all
    its hours, never a sum of smaller counts. delete+insert replaces whole (tenant, meter, hour)
    groups, which is exactly the rebuild granularity. -#}

with

unique_meters as (
    select meter, unique_dimension
    from {{ ref('stg_meterline__meters') }}
    where aggregation = 'unique_count'
),

{% if is_incremental() -%}
changed_hours as (
    {{ usage_changed_periods('hour') }}
),

events as (
    select e.*
    from changed_hours as c
    cross join lateral (
        select tenant_id, meter, occurred_at, dimensions, loaded_at
        from {{ ref('stg_raw__usage_events') }}
        where occurred_at >= c.period_start
          and occurred_at < c.period_start + interval '1 hour'
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as e
),
{%- else -%}
events as (
    select tenant_id, meter, occurred_at, dimensions, loaded_at
    from {{ ref('stg_raw__usage_events') }}
),
{%- endif %}

final as (
    select
        events.tenant_id,
        events.meter,
        date_trunc('hour', events.occurred_at, 'UTC') as hour,
        events.dimensions ->> unique_meters.unique_dimension as dimension_value,
        count(*) as event_count,
        max(events.loaded_at) as max_loaded_at
    from events
    inner join unique_meters on unique_meters.meter = events.meter
    group by 1, 2, 3, 4
)

select * from final
