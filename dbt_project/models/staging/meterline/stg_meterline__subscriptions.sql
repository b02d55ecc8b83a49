with

source as (select * from {{ source('meterline', 'subscriptions') }}),

final as (
    select
        subscription_id,
        tenant_id,
        plan_id,
        effective_from,
        effective_to,
        in_force
    from source
)

select * from final
