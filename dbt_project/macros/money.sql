{#- Round an exact numeric amount half-up (away from zero; amounts are never negative) to the
    currency's minor unit and return integer minor units: 1.005 USD -> 101, 5.5 JPY -> 6. -#}
{% macro to_minor_units(amount, minor_unit) -%}
    (round(({{ amount }})::numeric, {{ minor_unit }}) * (10::numeric ^ ({{ minor_unit }})))::bigint
{%- endmacro %}

{#- 1234567 -> '1,234,567'; 0.5 -> '0.5' (for invoice line descriptions). -#}
{% macro format_quantity(quantity) -%}
    rtrim(to_char(({{ quantity }})::numeric, 'FM999,999,999,999,999,990.999999'), '.')
{%- endmacro %}
