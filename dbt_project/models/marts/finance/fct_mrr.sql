{#- MRR per tenant and month after mrr-playbook: a tenant x month spine from the tenant's first
    plan month to the month of as_of, MRR measured at the end of each month (the monthly base
    fee of the plan in force then, 0 when none or after cancellation), lag() for the previous
    month, and a CASE ordered so that reactivation is reachable. The month after a tenant's last
    paying month carries the churn (the synthetic churn month). Months where the tenant had no
    MRR before or after (free plan, long gone) are not movements and are left out. -#}

with

tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
tenants as (select * from {{ ref('stg_meterline__tenants') }}),

spine as (
    {{ month_spine('tenant_months', 'tenant_id', 'month_start') }}
),

measured as (
    select
        spine.tenant_id,
        spine.month,
        coalesce(tenant_months.currency, tenants.currency) as currency,
        case
            when tenant_months.is_active_at_month_end
                then {{ to_minor_units('tenant_months.plan_base_fee', 'tenant_months.minor_unit') }}
            else 0
        end as mrr
    from spine
    left join tenant_months
        on tenant_months.tenant_id = spine.tenant_id and tenant_months.month = spine.month
    left join tenants on tenants.tenant_id = spine.tenant_id
),

lagged as (
    select
        measured.*,
        coalesce(lag(mrr) over (partition by tenant_id order by month), 0) as previous_mrr,
        min(month) filter (where mrr > 0) over (partition by tenant_id) as first_paying_month
    from measured
),

final as (
    select
        tenant_id,
        month,
        mrr::bigint as mrr,
        previous_mrr::bigint as previous_mrr,
        (mrr - previous_mrr)::bigint as mrr_change,
        case
            when mrr > 0 and previous_mrr = 0 and month = first_paying_month then 'new'
            when mrr > 0 and previous_mrr = 0 then 'reactivation'
            when mrr = 0 and previous_mrr > 0 then 'churn'
            when mrr > previous_mrr then 'expansion'
            when mrr < previous_mrr then 'contraction'
            else 'unchanged'
        end as change_category,
        currency
    from lagged
    where mrr > 0 or previous_mrr > 0
)

select * from final
