{#- Aggregation semantics of a meter (meterline.meters.aggregation), the one definition on the
    dbt side; ingestion.aggregation.aggregated_quantity_sql is the same rule for Python's SQL
    (alerts' Postgres fallback, the Redis/Postgres drift check).

    Over raw events of a period:
      sum           sum(value)
      count         count(*)
      max           max(value)
      last          the value of the latest event (occurred_at, then event_id, descending)
      unique_count  count of distinct dimensions ->> unique_dimension
    Rolling finer periods up (hours -> days -> months): sum and count add up, max takes the
    max, last takes the latest period's quantity, unique_count is recounted from the distinct
    values (a sum of hourly distinct counts would overcount). -#}

{#- The CASE over raw events for the aggregations in `kinds` (a model that splits meters by
    aggregation into branches passes only its branch's kinds, so no branch pays for another's
    aggregate). `events`/`meters` are the relation aliases. -#}
{% macro aggregate_events(aggregation, events='events', meters='meters',
                          kinds=['sum', 'count', 'max', 'last', 'unique_count']) -%}
    {%- set expressions = {
        'sum': 'sum(' ~ events ~ '.value)',
        'count': 'count(*)::numeric',
        'max': 'max(' ~ events ~ '.value)',
        'last': '(array_agg(' ~ events ~ '.value order by ' ~ events ~ '.occurred_at desc, '
            ~ events ~ '.event_id desc))[1]',
        'unique_count': 'count(distinct ' ~ events ~ '.dimensions ->> ' ~ meters
            ~ '.unique_dimension)::numeric',
    } -%}
    case {{ aggregation }}
        {%- for kind in kinds %}
        when '{{ kind }}' then {{ expressions[kind] }}
        {%- endfor %}
    end
{%- endmacro %}

{#- The quantity of a rolled-up period from its finer periods' sum, max, latest quantity and
    the period's recounted distinct values. -#}
{% macro rolled_up_quantity(aggregation, sum_quantity, max_quantity, last_quantity,
                            distinct_count) -%}
    case {{ aggregation }}
            when 'max' then {{ max_quantity }}
            when 'last' then {{ last_quantity }}
            when 'unique_count' then coalesce({{ distinct_count }}, 0)
            else {{ sum_quantity }}
        end
{%- endmacro %}
