{#- Monthly usage of every tenant and meter, rated on the plan in force at the end of the month
    (int_tenant_months_summarized). `amount_exact` is the unrounded charge (trailing zeros trimmed) (macro rated_amount);
    `amount` is rounded half-up once to the currency's minor unit. Usage in a month without any
    plan is kept with a null plan and no charge. -#}

with

usage as (select * from {{ ref('fct_usage_monthly') }}),
tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
plan_meters as (select * from {{ ref('stg_meterline__plan_meters') }}),

rated as (
    select
        usage.tenant_id,
        usage.month,
        usage.meter,
        tenant_months.plan_id,
        tenant_months.plan_version,
        tenant_months.currency,
        tenant_months.minor_unit,
        usage.quantity,
        coalesce(plan_meters.pricing_model, 'none') as pricing_model,
        coalesce(plan_meters.included_quantity, 0) as included_quantity,
        trim_scale(greatest(0, usage.quantity - coalesce(plan_meters.included_quantity, 0))) as billable_quantity,
        trim_scale({{ rated_amount('tenant_months.plan_id', 'usage.meter', 'usage.quantity', 'tenant_months.plan_version') }}) as amount_exact
    from usage
    left join tenant_months
        on tenant_months.tenant_id = usage.tenant_id and tenant_months.month = usage.month
    left join plan_meters
        on plan_meters.plan_id = tenant_months.plan_id and plan_meters.meter = usage.meter
        and plan_meters.plan_version = tenant_months.plan_version
),

final as (
    select
        rated.*,
        {{ to_minor_units('rated.amount_exact', 'coalesce(rated.minor_unit, 2)') }} as amount
    from rated
)

select * from final
