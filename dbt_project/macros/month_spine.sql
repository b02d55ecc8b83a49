{#- Every UTC month from a key's first month to the month of as_of (the open month), for each
    `key` of `relation`: one row per key and month with columns `key` and month (date, the
    month's first day). `month_start` is a timestamptz expression over `relation`, the start
    of a month; the key's earliest one is its first month. -#}
{% macro month_spine(relation, key, month_start) -%}
    select
        firsts.{{ key }},
        (series.month_start at time zone 'UTC')::date as month
    from (
        select {{ key }}, min({{ month_start }}) as first_month_start
        from {{ relation }}
        group by {{ key }}
    ) as firsts
    cross join lateral generate_series(
        firsts.first_month_start, {{ as_of_month_start() }}, interval '1 month'
    ) as series (month_start)
{%- endmacro %}
