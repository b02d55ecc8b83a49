{#- Each plan's invoice floor and cap (migration 0007_pricing_rules, from the source table):
    minimum_commitment tops a smaller month total up, maximum_spend caps a larger one. Plans
    without either are left out. One row per plan version (the limits are part of it). -#}

with

plans as (select * from {{ ref('stg_meterline__plans') }}),
limits as (
    select plan_id, plan_version, minimum_commitment, maximum_spend
    from {{ source('meterline', 'plans') }}
    where minimum_commitment is not null or maximum_spend is not null
),

final as (
    select limits.plan_id, limits.plan_version, limits.minimum_commitment, limits.maximum_spend
    from limits
    inner join plans
        on plans.plan_id = limits.plan_id and plans.plan_version = limits.plan_version
)

select * from final
