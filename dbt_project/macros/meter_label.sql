{#- How a meter reads on an invoice line: its label from the seed meter_labels (written from
    billing.meter_labels.METER_LABELS, the one list Stripe lines use too), else its id with
    spaces and the first letter capitalized ('gpu_hours' -> 'Gpu hours'), as
    billing.meter_labels.meter_label does. -#}
{% macro meter_label(label, meter) -%}
    coalesce(
        nullif({{ label }}, ''),
        upper(left(replace({{ meter }}, '_', ' '), 1)) || lower(substr(replace({{ meter }}, '_', ' '), 2))
    )
{%- endmacro %}
