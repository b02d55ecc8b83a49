-- depends_on: {{ ref('stg_raw__usage_events') }}
-- unique (tenant_id, meter, month): the contract's primary key (_usage__models.yml)
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'meter', 'month'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['month']},
        ],
    )
}}

{#- Rolled up from fct_usage_daily by the macro rolled_up_usage for sum, count, max (the
    month's peak is the maximum of the daily peaks; peaks are never summed) and last; unique
    counts are the distinct values over all hours of the month, never a sum of daily counts.
    An incremental run reads only the changed months' days and values. -#}

with

meters as (select * from {{ ref('stg_meterline__meters') }}),

{% if is_incremental() -%}
changed_months as (
    {{ usage_changed_periods('month') }}
),

daily as (
    {{ rows_in_periods(ref('fct_usage_daily'), 'day', 'month', 'changed_months', date_column=true) }}
),

unique_values as (
    {{ rows_in_periods(ref('int_usage_values_deduplicated'), 'hour', 'month', 'changed_months') }}
),
{%- else -%}
daily as (select * from {{ ref('fct_usage_daily') }}),
unique_values as (select * from {{ ref('int_usage_values_deduplicated') }}),
{%- endif %}

final as (
    {{ rolled_up_usage(finer='daily', time_column='day', period='month') }}
)

select * from final
