{#-
  Periods (UTC period starts, timestamptz) an incremental usage model must rebuild.

  * Always: every period holding an event loaded after the model's watermark, i.e. the newest
    `max_loaded_at` already in {{ this }}, minus `loaded_at_grace_minutes` (a loader
    transaction that began before the last build but committed after it carries an older
    loaded_at). This has no age limit: importing a whole past month is picked up by the next
    plain run, no full refresh needed, and a windowed run never skips a late event for good.
  * With an explicit window (vars min_date/max_date, half-open, as a partitioned run passes):
    also every period overlapping [min_date - lookback_days, max_date), rebuilt from scratch
    whether or not its events look new (robust to late loads with odd loaded_at values).

  grain: 'hour', 'day' or 'month'. Only valid inside `{% if is_incremental() %}`.
-#}
{% macro usage_changed_periods(grain) -%}
    {%- set min_date = var('min_date', none) -%}
    {%- set max_date = var('max_date', none) -%}
    {#- The watermark is read first and inlined as a literal, so the planner sizes the changed
        set from the loaded_at index statistics instead of guessing a third of the table. -#}
    {%- set watermark = '-infinity' -%}
    {%- if execute -%}
        {%- set result = run_query(
            "select coalesce(max(max_loaded_at), '-infinity'::timestamptz)::text from " ~ this
        ) -%}
        {%- set watermark = result.columns[0].values()[0] -%}
    {%- endif %}
    select distinct date_trunc('{{ grain }}', occurred_at, 'UTC') as period_start
    from {{ ref('stg_raw__usage_events') }}
    where loaded_at > '{{ watermark }}'::timestamptz
        - interval '{{ var("loaded_at_grace_minutes") }} minutes'
    {%- if min_date and max_date %}
    union
    select generate_series(
        date_trunc(
            '{{ grain }}',
            '{{ min_date }}'::timestamptz - interval '{{ var("lookback_days") }} days',
            'UTC'
        ),
        '{{ max_date }}'::timestamptz - interval '1 microsecond',
        interval '1 {{ grain }}'
    )
    {%- elif min_date or max_date %}
    {{ exceptions.raise_compiler_error(
        "vars min_date and max_date go together: pass both (a half-open window) or neither"
    ) }}
    {%- endif %}
{%- endmacro %}

{#-
  The rows of `relation` whose `time_column` lies in one of the `grain` periods ('hour', 'day',
  'month') listed in `periods` (the name of a CTE holding usage_changed_periods(grain)), read
  with one index range scan per period: the lateral join, kept by `offset 0`, stops the planner
  from scanning or hashing the whole table. A date `time_column` (fct_usage_daily.day) is
  compared with the periods' UTC dates, so that its index serves too.
-#}
{% macro rows_in_periods(relation, time_column, grain, periods, date_column=false) -%}
    {%- set period_start = 'c.period_start' -%}
    {%- set period_end = "c.period_start + interval '1 " ~ grain ~ "'" -%}
    {%- if date_column -%}
        {%- set period_start = "(" ~ period_start ~ " at time zone 'UTC')::date" -%}
        {%- set period_end = "((" ~ period_end ~ ") at time zone 'UTC')::date" -%}
    {%- endif %}
    select r.*
    from {{ periods }} as c
    cross join lateral (
        select * from {{ relation }}
        where {{ time_column }} >= {{ period_start }} and {{ time_column }} < {{ period_end }}
        offset 0  -- keep the lateral: one index range scan per changed period
    ) as r
{%- endmacro %}
