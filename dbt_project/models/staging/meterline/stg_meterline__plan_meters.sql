with

source as (select * from {{ source('meterline', 'plan_meters') }}),

final as (
    select
        plan_id,
        plan_version,
        meter,
        limit_quantity,
        hard_limit,
        pricing_model,
        included_quantity,
        package_size
    from source
)

select * from final
