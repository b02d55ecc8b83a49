with

source as (select * from {{ source('raw', 'usage_events') }}),

final as (
    select
        tenant_id,
        event_id,
        meter,
        value,
        occurred_at,
        dimensions,
        received_at,
        loaded_at
    from source
)

select * from final
