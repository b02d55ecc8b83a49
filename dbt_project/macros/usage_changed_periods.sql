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
