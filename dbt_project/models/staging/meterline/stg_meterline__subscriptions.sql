with

source as (select * from {{ source('meterline', 'subscriptions') }}),

final as (
    select
        subscription_id,
        tenant_id,
        plan_id,
        plan_version,
        effective_from,
        effective_to,
        in_force
    from source
)

select * from final
