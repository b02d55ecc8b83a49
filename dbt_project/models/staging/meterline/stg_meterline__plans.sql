with

source as (select * from {{ source('meterline', 'plans') }}),

final as (
    select
        plan_id,
        plan_version,
        name as plan_name,
        base_fee,
        trim(currency)::text as currency,
        upgrade_to,
        description
    from source
)

select * from final
