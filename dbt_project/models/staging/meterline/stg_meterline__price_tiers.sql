with

source as (select * from {{ source('meterline', 'price_tiers') }}),

final as (
    select
        plan_id,
        plan_version,
        meter,
        tier_index,
        up_to,
        unit_price,
        flat_fee
    from source
)

select * from final
