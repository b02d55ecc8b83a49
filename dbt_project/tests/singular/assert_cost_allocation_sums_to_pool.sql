{{ config(meta={'dagster': {'ref': {'name': 'fct_cost_allocation'}}}) }}
-- Every cost pool is allocated exactly, to the cent (largest-remainder rounding).
with pools as (
    select
        p.month,
        p.cost_pool,
        {{ to_minor_units('p.amount', 'c.minor_unit') }} as pool_amount
    from {{ ref('stg_raw__infra_costs') }} as p
    inner join {{ ref('currencies') }} as c on c.currency = p.currency
    where exists (
        select 1 from {{ ref('int_tenant_months_summarized') }} as t where t.month = p.month
    )
),

allocated as (
    select month, cost_pool, sum(allocated_cost) as allocated
    from {{ ref('fct_cost_allocation') }}
    group by month, cost_pool
)

select pools.*, allocated.allocated
from pools
left join allocated using (month, cost_pool)
where allocated.allocated is distinct from pools.pool_amount
