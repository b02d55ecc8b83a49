-- depends_on: {{ ref('stg_raw__usage_events') }}
-- unique (tenant_id, meter, hour): the contract's primary key (_usage__models.yml)
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'meter', 'hour'],
        on_schema_change='append_new_columns',
        pre_hook="set work_mem = '256MB'",
        indexes=[
            {'columns': ['hour']},
        ],
    )
}}

{#- Aggregation semantics: macros/aggregation.sql. sum, count and max meters in one
    (parallel) hash aggregate over the events; 'last' meters in a second branch that only pays
    for ordering when such meters exist; unique counts from int_usage_values_deduplicated. On an incremental run only the changed hours are read, one
    index range scan per hour (lateral join on occurred_at). The catalog's meters are joined
    inline (no CTE: a CTE scan would keep the aggregate out of parallel workers), and a larger
    work_mem keeps the full-refresh aggregate in memory. -#}

with

{% if is_incremental() -%}
changed_hours as (
    {{ usage_changed_periods('hour') }}
),

events as materialized (
    select e.*
    from changed_hours as c
    cross join lateral (
        select tenant_id, event_id, meter, value, occurred_at, loaded_at
        from {{ ref('stg_raw__usage_events') }}
        where occurred_at >= c.period_start
          and occurred_at < c.period_start + interval '1 hour'
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as e
),

unique_values as (
    select v.*
    from changed_hours as c
    cross join lateral (
        select * from {{ ref('int_usage_values_deduplicated') }}
        where hour = c.period_start
        offset 0  -- keep the lateral: one index scan per changed period
    ) as v
),
{%- else -%}
{#- not materialized: each branch scans the table itself (in parallel), never a 10M-row copy -#}
events as not materialized (
    select tenant_id, event_id, meter, value, occurred_at, loaded_at
    from {{ ref('stg_raw__usage_events') }}
),

unique_values as (select * from {{ ref('int_usage_values_deduplicated') }}),
{%- endif %}

additive as (
    select
        events.tenant_id,
        events.meter,
        date_trunc('hour', events.occurred_at, 'UTC') as hour,
        {{ aggregate_events('meters.aggregation', kinds=['sum', 'count', 'max']) }} as quantity,
        count(*) as event_count,
        max(events.loaded_at) as max_loaded_at
    from events
    inner join {{ ref('stg_meterline__meters') }} as meters on meters.meter = events.meter
    where meters.aggregation in ('sum', 'count', 'max')
    group by 1, 2, 3, meters.aggregation
),

latest as (
    select
        events.tenant_id,
        events.meter,
        date_trunc('hour', events.occurred_at, 'UTC') as hour,
        {{ aggregate_events('meters.aggregation', kinds=['last']) }} as quantity,
        count(*) as event_count,
        max(events.loaded_at) as max_loaded_at
    from events
    inner join {{ ref('stg_meterline__meters') }} as meters on meters.meter = events.meter
    where meters.aggregation = 'last'
    group by 1, 2, 3, meters.aggregation
),

distinct_counts as (
    select
        tenant_id,
        meter,
        hour,
        count(dimension_value)::numeric as quantity,
        sum(event_count)::bigint as event_count,
        max(max_loaded_at) as max_loaded_at
    from unique_values
    group by 1, 2, 3
),

final as (
    select * from additive
    union all
    select * from latest
    union all
    select * from distinct_counts
)

select * from final
