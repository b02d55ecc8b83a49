with

source as (select * from {{ source('raw', 'infra_costs') }}),

final as (
    select
        month,
        cost_pool,
        driver_meter,
        amount,
        trim(currency)::text as currency,
        imported_at
    from source
)

select * from final
