{#-
  The exact (unrounded) charge for `quantity` of `meter` on version `plan_version` of plan
  `plan_id` (the version the subscription pays), as numeric.
  One rating rule, shared by invoice lines and the tenant overview, identical to
  billing.rating (Python) and to the rule at the top of billing/catalog.yaml:

    billable = max(0, quantity - included_quantity); tiers count billable units and tier i
    covers (up_to[i-1], up_to[i]] (up_to null = unbounded, the first tier starts at 0).
    graduated: sum over tiers of units in the tier * unit_price, plus flat_fee of every tier
               holding units
    volume:    billable * unit_price of the tier billable falls in (first tier with
               up_to >= billable), plus that tier's flat_fee; 0 when billable = 0
    package:   ceil(billable / package_size) * unit_price of the first tier
    flat:      flat_fee of the first tier when billable > 0
    none:      0 (a meter the plan only limits, or does not list, is never charged)

  Arguments are SQL expressions. Written as a scalar subquery, so it works in any select.
-#}
{% macro rated_amount(plan_id, meter, quantity, plan_version) -%}
coalesce((
    select sum(
        case pm.pricing_model
            when 'graduated' then
                greatest(0, least(b.billable, coalesce(t.up_to, b.billable)) - t.lower_bound) * t.unit_price
                + case when b.billable > t.lower_bound then t.flat_fee else 0 end
            when 'volume' then
                case
                    when b.billable > t.lower_bound and (t.up_to is null or b.billable <= t.up_to)
                        then b.billable * t.unit_price + t.flat_fee
                    else 0
                end
            when 'package' then
                case
                    when t.is_first_tier and b.billable > 0
                        then ceil(b.billable / coalesce(pm.package_size, 1)) * t.unit_price
                    else 0
                end
            when 'flat' then
                case when t.is_first_tier and b.billable > 0 then t.flat_fee else 0 end
            else 0
        end
    )
    from {{ ref('stg_meterline__plan_meters') }} as pm
    cross join lateral (
        select greatest(0, ({{ quantity }})::numeric - pm.included_quantity) as billable
    ) as b
    inner join (
        select
            plan_id,
            plan_version,
            meter,
            up_to,
            unit_price,
            flat_fee,
            coalesce(lag(up_to) over tier_order, 0) as lower_bound,
            row_number() over tier_order = 1 as is_first_tier
        from {{ ref('stg_meterline__price_tiers') }}
        window tier_order as (partition by plan_id, plan_version, meter order by tier_index)
    ) as t
        on t.plan_id = pm.plan_id and t.plan_version = pm.plan_version and t.meter = pm.meter
    where pm.plan_id = ({{ plan_id }}) and pm.plan_version = ({{ plan_version }})
        and pm.meter = ({{ meter }})
), 0)
{%- endmacro %}
