{#- One row per tenant and month in which the tenant had a plan at any time (up to the month of
    as_of). Plan-change rule: the base fee is prorated by time on each plan (see
    int_subscriptions_prorated); usage is rated on the plan in force at the end of the month,
    i.e. the last plan of the month (for a tenant that canceled during the month: the plan it
    had when it canceled). -#}

with

prorated as (select * from {{ ref('int_subscriptions_prorated') }}),
tenants as (select * from {{ ref('stg_meterline__tenants') }}),
currencies as (select * from {{ ref('currencies') }}),

by_month as (
    select
        tenant_id,
        month,
        min(month_start) as month_start,
        min(month_end) as month_end,
        sum(base_fee_amount) as base_fee_amount,
        bool_or(covers_month_end) as is_active_at_month_end,
        count(*) as plan_count,
        string_agg(
            plan_name || ' ' || to_char(round(month_fraction * 100, 1), 'FM990.0') || '%',
            ' + ' order by covered_from
        ) as proration_note
    from prorated
    group by tenant_id, month
),

last_plan as (
    select tenant_id, month, plan_id, plan_version, plan_name, base_fee as plan_base_fee, currency as plan_currency
    from prorated
    where is_last_in_month
),

final as (
    select
        by_month.tenant_id,
        by_month.month,
        by_month.month_start,
        by_month.month_end,
        last_plan.plan_id,
        last_plan.plan_version,
        last_plan.plan_name,
        last_plan.plan_base_fee,
        by_month.base_fee_amount,
        case
            when by_month.plan_count = 1 and by_month.base_fee_amount = last_plan.plan_base_fee
                then last_plan.plan_name || ' plan base fee'
            else 'Base fee, prorated: ' || by_month.proration_note
        end as base_fee_description,
        by_month.is_active_at_month_end,
        coalesce(tenants.currency, last_plan.plan_currency) as currency,
        currencies.minor_unit
    from by_month
    inner join last_plan
        on last_plan.tenant_id = by_month.tenant_id and last_plan.month = by_month.month
    left join tenants on tenants.tenant_id = by_month.tenant_id
    left join currencies on currencies.currency = coalesce(tenants.currency, last_plan.plan_currency)
)

select * from final
