{#- The read-only role BI tools use (Metabase, Superset, any SQL client): METERLINE_BI_ROLE,
    default meterline_bi. The marts grant it SELECT (`+grants` in dbt_project.yml); the name
    must be a plain lower-case identifier, so it is used unquoted there and here. -#}
{% macro bi_role() -%}
    {%- set role = env_var('METERLINE_BI_ROLE', '') or 'meterline_bi' -%}
    {%- if not modules.re.match('^[a-z_][a-z0-9_]{0,62}$', role) -%}
        {{ exceptions.raise_compiler_error(
            "METERLINE_BI_ROLE must be a lower-case SQL identifier (letters, digits, _; at most "
            ~ "63 characters, not starting with a digit), got '" ~ role ~ "'") }}
    {%- endif -%}
    {{- return(role) -}}
{%- endmacro %}

{#- on-run-start: the BI role exists before any mart grants it SELECT, and may use the marts'
    schema (only that one: staging, intermediate, raw and meterline stay out of its reach).
    Idempotent and safe when several builds start at once (roles are server-wide). Created
    NOLOGIN: a DBA gives it a login or grants it to login users. Creating it needs CREATEROLE;
    when it already exists (made by a DBA) dbt needs no such privilege. The schema grant is
    skipped when the schema is not there yet (no mart selected); the next build makes it. -#}
{% macro ensure_bi_role() -%}
    {%- set role = bi_role() -%}
    {%- set schema = generate_schema_name('analytics', none) | trim -%}
    do $bi_role$
    begin
        if not exists (select from pg_catalog.pg_roles where rolname = '{{ role }}') then
            begin
                create role {{ role }} nologin;
            exception when duplicate_object or unique_violation then
                null;  -- created meanwhile by a concurrent build
            end;
        end if;
        if exists (select from pg_catalog.pg_namespace where nspname = '{{ schema }}') then
            grant usage on schema {{ adapter.quote(schema) }} to {{ role }};
        end if;
    end
    $bi_role$;
{%- endmacro %}
