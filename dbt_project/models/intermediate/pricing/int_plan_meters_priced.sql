{#- Every plan meter with its pricing rules (migration 0007_pricing_rules): the staging columns
    plus min_amount / max_amount (clamp of the month's charge), flat_fee_from_zero and rounding
    ('up' | 'down', for package and tier blocks) and prorate (included units and tier bounds
    scale with the days in force), and the percentage pricing fields, read from the source table
    here so staging stays as it is. One row per plan version and meter: the rules are part of
    the version (migration 0006_plan_versions). -#}

with

plan_meters as (select * from {{ ref('stg_meterline__plan_meters') }}),
rules as (
    select
        plan_id, plan_version, meter, min_amount, max_amount, flat_fee_from_zero, rounding, prorate,
        percentage_rate, fixed_fee, free_events, per_event_min, per_event_max
    from {{ source('meterline', 'plan_meters') }}
),

final as (
    select
        plan_meters.*,
        rules.min_amount,
        rules.max_amount,
        coalesce(rules.flat_fee_from_zero, false) as flat_fee_from_zero,
        coalesce(rules.rounding, 'up') as rounding,
        coalesce(rules.prorate, false) as prorate,
        rules.percentage_rate,
        coalesce(rules.fixed_fee, 0) as fixed_fee,
        coalesce(rules.free_events, 0) as free_events,
        rules.per_event_min,
        rules.per_event_max
    from plan_meters
    left join rules
        on rules.plan_id = plan_meters.plan_id
        and rules.plan_version = plan_meters.plan_version
        and rules.meter = plan_meters.meter
)

select * from final
