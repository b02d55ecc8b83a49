-- depends_on: {{ ref('stg_raw__usage_events') }}
-- unique (tenant_id, meter, day): the contract's primary key (_usage__models.yml)
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'meter', 'day'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['day']},
        ],
    )
}}

{#- Rolled up from fct_usage_hourly by the macro rolled_up_usage (sums and counts added, peaks
    maxed, the last hour's value for 'last'); unique counts are the distinct values over the
    day's hours. An incremental run reads only the changed days' hours and values. -#}

with

meters as (select * from {{ ref('stg_meterline__meters') }}),

{% if is_incremental() -%}
changed_days as (
    {{ usage_changed_periods('day') }}
),

hourly as (
    {{ rows_in_periods(ref('fct_usage_hourly'), 'hour', 'day', 'changed_days') }}
),

unique_values as (
    {{ rows_in_periods(ref('int_usage_values_deduplicated'), 'hour', 'day', 'changed_days') }}
),
{%- else -%}
hourly as (select * from {{ ref('fct_usage_hourly') }}),
unique_values as (select * from {{ ref('int_usage_values_deduplicated') }}),
{%- endif %}

final as (
    {{ rolled_up_usage(finer='hourly', time_column='hour', period='day') }}
)

select * from final
