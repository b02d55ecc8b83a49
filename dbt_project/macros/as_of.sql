{#- The instant treated as "now" by every date rule in SQL (open month, closed months, MRR spine).
    In order: the `as_of` var (tests pin it), METERLINE_AS_OF (Meterline's clock: the pipeline
    sets it on every run), else the database clock for a plain hand-run `dbt build`.
    The clock travels as an environment variable rather than a var so that dbt's partial
    parsing survives a new instant on every run (changed --vars force a full re-parse). -#}
{% macro as_of() -%}
    {%- set at = var('as_of', none) or env_var('METERLINE_AS_OF', '') -%}
    {%- if at -%}
        ('{{ at }}'::timestamptz)
    {%- else -%}
        now()
    {%- endif -%}
{%- endmacro %}

{#- Start of the (open) month containing as_of, as a UTC timestamptz. -#}
{% macro as_of_month_start() -%}
    date_trunc('month', {{ as_of() }}, 'UTC')
{%- endmacro %}
