with

source as (select * from {{ source('meterline', 'tenants') }}),

final as (
    select
        tenant_id,
        name as tenant_name,
        email,
        trim(currency)::text as currency,
        status,
        created_at,
        canceled_at
    from source
)

select * from final
