{#- Round an exact numeric amount half-up (away from zero; amounts are never negative) to the
    currency's minor unit and return integer minor units: 1.005 USD -> 101, 5.5 JPY -> 6. -#}
{% macro to_minor_units(amount, minor_unit) -%}
    (round(({{ amount }})::numeric, {{ minor_unit }}) * (10::numeric ^ ({{ minor_unit }})))::bigint
{%- endmacro %}

{#- 1234567 -> '1,234,567'; 0.5 -> '0.5' (for invoice line descriptions). -#}
{% macro format_quantity(quantity) -%}
    rtrim(to_char(({{ quantity }})::numeric, 'FM999,999,999,999,999,990.999999'), '.')
{%- endmacro %}

{#- What a usage line of one segment of a month with a plan change adds to its description
    (billing.rating.segment_note): ' on Pro v2, 2026-09-16 12:00 to 2026-10-01 00:00 UTC'. -#}
{% macro segment_note(plan_name, plan_version, usage_from, usage_to) -%}
    ' on ' || {{ plan_name }} || ' v' || {{ plan_version }} || ', '
        || to_char({{ usage_from }} at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' to '
        || to_char({{ usage_to }} at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'
{%- endmacro %}
