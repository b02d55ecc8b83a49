{#- Each infrastructure cost pool of a month, allocated to the tenants that had a plan that
    month. Basis, in order: the tenants' use of the pool's driver meter (when the pool names one
    and it was used), else their revenue share (invoice totals), else equal shares. The pool is
    converted to minor units once, each tenant gets the floor of its exact share, and the
    leftover units go one each to the largest fractional remainders (ties: tenant_id), so the
    allocations sum to the pool to the cent. Revenue, gross margin and margin % are per tenant
    and month (the same on each of the tenant's pool rows; sum allocated_cost, not revenue).
    Margin is null when the pool and the tenant bill in different currencies. -#}

with

pools as (select * from {{ ref('stg_raw__infra_costs') }}),
currencies as (select * from {{ ref('currencies') }}),
tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
invoices as (select * from {{ ref('fct_invoices') }}),
usage as (select * from {{ ref('fct_usage_monthly') }}),

candidates as (
    select
        pools.month,
        pools.cost_pool,
        pools.driver_meter,
        pools.currency,
        {{ to_minor_units('pools.amount', 'currencies.minor_unit') }} as pool_amount,
        tenant_months.tenant_id,
        tenant_months.currency as tenant_currency,
        coalesce(usage.quantity, 0) as driver_quantity,
        coalesce(invoices.total_amount, 0) as revenue
    from pools
    inner join currencies on currencies.currency = pools.currency
    inner join tenant_months on tenant_months.month = pools.month
    left join usage
        on usage.tenant_id = tenant_months.tenant_id
        and usage.month = pools.month
        and usage.meter = pools.driver_meter
    left join invoices
        on invoices.tenant_id = tenant_months.tenant_id and invoices.month = pools.month
),

based as (
    select
        candidates.*,
        case
            when driver_meter is not null
                and sum(driver_quantity) over pool > 0 then 'driver'
            when sum(revenue) over pool > 0 then 'revenue'
            else 'equal'
        end as allocation_basis
    from candidates
    window pool as (partition by month, cost_pool)
),

weighted as (
    select
        based.*,
        case allocation_basis
            when 'driver' then driver_quantity
            when 'revenue' then revenue::numeric
            else 1::numeric
        end as weight
    from based
),

shares as (
    select
        weighted.*,
        weight / sum(weight) over pool as share,
        pool_amount * weight / sum(weight) over pool as exact_amount,
        floor(pool_amount * weight / sum(weight) over pool) as floor_amount
    from weighted
    window pool as (partition by month, cost_pool)
),

ranked as (
    select
        shares.*,
        pool_amount - sum(floor_amount) over pool as leftover,
        row_number() over (
            partition by month, cost_pool
            order by exact_amount - floor_amount desc, tenant_id
        ) as remainder_rank
    from shares
    window pool as (partition by month, cost_pool)
),

allocated as (
    select
        ranked.*,
        (floor_amount + case when remainder_rank <= leftover then 1 else 0 end)::bigint as allocated_cost
    from ranked
),

final as (
    select
        month,
        tenant_id,
        cost_pool,
        driver_meter,
        allocation_basis,
        driver_quantity,
        round(share, 8) as share,
        pool_amount,
        allocated_cost,
        (sum(allocated_cost) over tenant_month)::bigint as tenant_allocated_cost,
        revenue::bigint as revenue,
        case when tenant_currency = currency
            then (revenue - sum(allocated_cost) over tenant_month)::bigint
        end as gross_margin,
        case when tenant_currency = currency and revenue > 0
            then round((revenue - sum(allocated_cost) over tenant_month) * 100.0 / revenue, 2)
        end as margin_pct,
        currency
    from allocated
    window tenant_month as (partition by month, tenant_id)
)

select * from final
