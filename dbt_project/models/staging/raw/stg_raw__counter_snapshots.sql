with

source as (select * from {{ source('raw', 'counter_snapshots') }}),

final as (
    select
        snapshot_at,
        tenant_id,
        meter,
        period_kind,
        period_start,
        quantity,
        refused
    from source
)

select * from final
