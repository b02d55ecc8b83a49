{#- The instant treated as "now": var `as_of` (tests and demos pin it) or the database clock. -#}
{% macro as_of() -%}
    {%- if var('as_of', none) -%}
        ('{{ var("as_of") }}'::timestamptz)
    {%- else -%}
        now()
    {%- endif -%}
{%- endmacro %}

{#- Start of the (open) month containing as_of, as a UTC timestamptz. -#}
{% macro as_of_month_start() -%}
    date_trunc('month', {{ as_of() }}, 'UTC')
{%- endmacro %}
