{#- Tenant x meter x month: usage against the limit of the plan in force at the end of the
    month (the current plan for the open month). Every meter of the plan appears, used or not;
    usage of a meter the plan does not list appears without a limit.
    status: exceeded when quantity >= limit (> 0), or any usage against a limit of 0;
    warning from quota_warning_percent (default 80 %); ok otherwise or without a limit. -#}

with

tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
plan_meters as (select * from {{ ref('stg_meterline__plan_meters') }}),
usage as (select * from {{ ref('fct_usage_monthly') }}),

planned as (
    select
        tenant_months.tenant_id,
        plan_meters.meter,
        tenant_months.month,
        tenant_months.plan_id,
        tenant_months.plan_version
    from tenant_months
    inner join plan_meters
        on plan_meters.plan_id = tenant_months.plan_id
        and plan_meters.plan_version = tenant_months.plan_version
),

unplanned as (
    select
        usage.tenant_id,
        usage.meter,
        usage.month,
        tenant_months.plan_id,
        tenant_months.plan_version
    from usage
    left join tenant_months
        on tenant_months.tenant_id = usage.tenant_id and tenant_months.month = usage.month
    where not exists (
        select 1 from planned
        where planned.tenant_id = usage.tenant_id
          and planned.meter = usage.meter
          and planned.month = usage.month
    )
),

keys as (
    select * from planned
    union all
    select * from unplanned
),

measured as (
    select
        keys.tenant_id,
        keys.meter,
        keys.month,
        keys.plan_id,
        keys.plan_version,
        coalesce(usage.quantity, 0) as quantity,
        coalesce(usage.event_count, 0) as event_count,
        plan_meters.limit_quantity,
        coalesce(plan_meters.hard_limit, false) as hard_limit
    from keys
    left join usage
        on usage.tenant_id = keys.tenant_id and usage.meter = keys.meter and usage.month = keys.month
    left join plan_meters
        on plan_meters.plan_id = keys.plan_id and plan_meters.plan_version = keys.plan_version
        and plan_meters.meter = keys.meter
),

final as (
    select
        tenant_id,
        meter,
        month,
        plan_id,
        plan_version,
        quantity,
        event_count,
        limit_quantity,
        hard_limit,
        case when limit_quantity > 0 then round(quantity * 100 / limit_quantity, 2) end as percent_used,
        greatest(0, quantity - coalesce(limit_quantity, quantity)) as overage_quantity,
        case
            when limit_quantity is null then 'ok'
            when limit_quantity = 0 then case when quantity > 0 then 'exceeded' else 'ok' end
            when quantity >= limit_quantity then 'exceeded'
            when quantity * 100 >= limit_quantity * {{ var('quota_warning_percent') }} then 'warning'
            else 'ok'
        end as status
    from measured
)

select * from final
