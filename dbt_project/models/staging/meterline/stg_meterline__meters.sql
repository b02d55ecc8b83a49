with

source as (select * from {{ source('meterline', 'meters') }}),

final as (
    select
        meter,
        aggregation,
        unit,
        unique_dimension,
        description
    from source
)

select * from final
