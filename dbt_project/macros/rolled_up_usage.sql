{#-
  The roll-up of a usage table to a coarser UTC period, the one rule behind
  fct_usage_hourly -> fct_usage_daily and fct_usage_daily -> fct_usage_monthly.

  A select with one row per tenant, meter and period found in `finer`:
      tenant_id, meter, <period> (date: the period's first day), quantity, event_count,
      max_loaded_at
  quantity follows the meter's aggregation (macros/aggregation.sql, rolled_up_quantity):
      sum, count    the sum of the finer quantities
      max           the max of the finer quantities (peaks are never summed)
      last          the quantity of the latest finer period
      unique_count  recounted as the distinct dimension values over all the period's hours in
                    `unique_values` (a sum of finer distinct counts would overcount); 0 when
                    none of them carries the dimension
  event_count adds up; max_loaded_at (the incremental watermark) is the latest of the period.

  Arguments: names of relations or CTEs of the calling model, and the period.
      finer          the finer usage rows: tenant_id, meter, quantity, event_count,
                     max_loaded_at and `time_column`
      time_column    the finer period column (timestamptz `hour`, date `day`)
      period         'day' or 'month': the UTC period rolled up to, and the name of the output
                     column
      unique_values  rows of int_usage_values_deduplicated (tenant_id, meter, hour,
                     dimension_value)
      meters         the meter catalog (meter, aggregation)
  The caller chooses which rows `finer` and `unique_values` hold (all of them, or on an
  incremental run only the changed periods); both must cover the same whole periods, since
  each output row is computed from exactly the rows it is given.
-#}
{% macro rolled_up_usage(finer, time_column, period, unique_values='unique_values',
                         meters='meters') -%}
    with distinct_counts as (
        select
            tenant_id,
            meter,
            {{ utc_period(period, 'hour') }} as {{ period }},
            count(distinct dimension_value)::numeric as distinct_count
        from {{ unique_values }}
        group by 1, 2, 3
    ),

    rolled as (
        select
            {{ finer }}.tenant_id,
            {{ finer }}.meter,
            {{ utc_period(period, finer ~ '.' ~ time_column) }} as {{ period }},
            {{ meters }}.aggregation,
            sum({{ finer }}.quantity) as sum_quantity,
            max({{ finer }}.quantity) as max_quantity,
            (array_agg({{ finer }}.quantity order by {{ finer }}.{{ time_column }} desc))[1]
                as last_quantity,
            sum({{ finer }}.event_count)::bigint as event_count,
            max({{ finer }}.max_loaded_at) as max_loaded_at
        from {{ finer }}
        inner join {{ meters }} on {{ meters }}.meter = {{ finer }}.meter
        group by 1, 2, 3, 4
    )

    select
        rolled.tenant_id,
        rolled.meter,
        rolled.{{ period }},
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
        and distinct_counts.{{ period }} = rolled.{{ period }}
{%- endmacro %}

{#- The UTC `period` ('day' or 'month') holding `instant`, as the date of its first day:
    2027-03-10 12:05 UTC -> 2027-03-10 by day, 2027-03-01 by month. `instant` is a timestamptz,
    or a date (read as midnight UTC: every model runs with time zone UTC). -#}
{% macro utc_period(period, instant) -%}
    (date_trunc('{{ period }}', {{ instant }}, 'UTC') at time zone 'UTC')::date
{%- endmacro %}
