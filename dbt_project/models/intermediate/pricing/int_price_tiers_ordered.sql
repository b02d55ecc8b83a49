{#- Price tiers with their lower bound (the previous tier's up_to, 0 for the first), whether
    each is the first tier, and block_size (migration 0007_pricing_rules, from the source
    table: units in the tier are priced per block of that size), per plan version. -#}

with

tiers as (select * from {{ ref('stg_meterline__price_tiers') }}),
blocks as (
    select plan_id, plan_version, meter, tier_index, block_size
    from {{ source('meterline', 'price_tiers') }}
),

final as (
    select
        tiers.plan_id,
        tiers.plan_version,
        tiers.meter,
        tiers.tier_index,
        tiers.up_to,
        tiers.unit_price,
        tiers.flat_fee,
        blocks.block_size,
        coalesce(lag(tiers.up_to) over tier_order, 0) as lower_bound,
        row_number() over tier_order = 1 as is_first_tier
    from tiers
    left join blocks
        on blocks.plan_id = tiers.plan_id
        and blocks.plan_version = tiers.plan_version
        and blocks.meter = tiers.meter
        and blocks.tier_index = tiers.tier_index
    window tier_order as (partition by tiers.plan_id, tiers.plan_version, tiers.meter order by tiers.tier_index)
)

select * from final
