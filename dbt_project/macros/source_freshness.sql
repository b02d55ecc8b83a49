{#- `dbt source freshness` on Meterline's one clock: a source's age is measured at as_of()
    (METERLINE_AS_OF, which the pipeline sets from meterline.core.clock), not at the database's
    now(), and only rows loaded by then count. A replay or a test at another instant then sees
    the sources as they were at that instant. Overrides dbt's default__collect_freshness for
    this project (dbt dispatches to the root project's postgres__ implementation first). -#}
{% macro postgres__collect_freshness(source, loaded_at_field, filter) %}
    {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
        select
            max({{ loaded_at_field }}) as max_loaded_at,
            {{ as_of() }} as snapshotted_at
        from {{ source }}
        where {{ loaded_at_field }} <= {{ as_of() }}
        {% if filter %}
            and ({{ filter }})
        {% endif %}
    {%- endcall %}
    {{ return(load_result('collect_freshness')) }}
{% endmacro %}
