{#-
  The exact (unrounded) charge for `quantity` of `meter` on version `plan_version` of plan
  `plan_id` (the version the subscription pays), as numeric.
  One rating rule, shared by invoice lines and the tenant overview, identical to
  billing.rating (Python) and to the rule at the top of billing/catalog.yaml:

    billable = max(0, quantity - included_quantity); tiers count billable units and tier i
    covers (up_to[i-1], up_to[i]] (up_to null = unbounded, the first tier starts at 0).
    blocks(u, size) = u when size is null, else ceil(u / size) (floor with rounding 'down').
    graduated: sum over tiers of blocks(units in the tier, block_size) * unit_price, plus
               flat_fee of every tier holding units
    volume:    blocks(billable, block_size) * unit_price of the tier billable falls in (first
               tier with up_to >= billable), plus that tier's flat_fee; 0 when billable = 0
    package:   blocks(billable, package_size) * unit_price of the first tier
    flat:      flat_fee of the first tier when billable > 0
    none:      0 (a meter the plan only limits, or does not list, is never charged)
    flat_fee_from_zero: the first tier's flat_fee is charged even when billable = 0.
    min_amount / max_amount: the charge is clamped into [min_amount, max_amount].
    prorate: when days_in_force < days_in_month, included_quantity and every tier bound are
             multiplied by days_in_force / days_in_month, rounded half-up to 6 decimals.

  Arguments are SQL expressions. Written as a scalar subquery, so it works in any select.
-#}
{% macro rated_amount(plan_id, meter, quantity, plan_version, days_in_force='1', days_in_month='1') -%}
{%- set prorate -%}
    (pm.prorate and ({{ days_in_force }}) < ({{ days_in_month }}))
{%- endset -%}
{%- set ratio = '* (' ~ days_in_force ~ ')::numeric / (' ~ days_in_month ~ ')' -%}
coalesce((
    select case
        when pm.pricing_model = 'none' then 0
        -- least/greatest ignore nulls: a missing min_amount or max_amount does not clamp
        else least(pm.max_amount, greatest(pm.min_amount, x.amount))
    end
    from {{ ref('int_plan_meters_priced') }} as pm
    cross join lateral (
        select greatest(0, ({{ quantity }})::numeric - case
            when {{ prorate }} then round(pm.included_quantity {{ ratio }}, 6)
            else pm.included_quantity
        end) as billable
    ) as b
    cross join lateral (
        select coalesce(sum({{ _tier_amount('pm', 'b.billable', 't') }}), 0) as amount
        from (
            select
                tiers.is_first_tier,
                tiers.unit_price,
                tiers.flat_fee,
                tiers.block_size,
                case when {{ prorate }} then round(tiers.up_to {{ ratio }}, 6) else tiers.up_to end as up_to,
                case when {{ prorate }} then round(tiers.lower_bound {{ ratio }}, 6) else tiers.lower_bound end as lower_bound
            from {{ ref('int_price_tiers_ordered') }} as tiers
            where tiers.plan_id = pm.plan_id and tiers.plan_version = pm.plan_version
                and tiers.meter = pm.meter
        ) as t
    ) as x
    where pm.plan_id = ({{ plan_id }}) and pm.plan_version = ({{ plan_version }})
        and pm.meter = ({{ meter }})
), 0)
{%- endmacro %}

{#- What tier `t` adds to the charge of `billable` units under plan meter `pm`. -#}
{% macro _tier_amount(pm, billable, t) -%}
case {{ pm }}.pricing_model
    when 'graduated' then
        {{ _blocks('greatest(0, least(' ~ billable ~ ', coalesce(' ~ t ~ '.up_to, ' ~ billable ~ ')) - ' ~ t ~ '.lower_bound)', t ~ '.block_size', pm ~ '.rounding') }}
            * {{ t }}.unit_price
        + case
            when {{ t }}.is_first_tier
                then case when {{ billable }} > 0 or {{ pm }}.flat_fee_from_zero then {{ t }}.flat_fee else 0 end
            when {{ billable }} > {{ t }}.lower_bound then {{ t }}.flat_fee
            else 0
        end
    when 'volume' then
        case
            when {{ billable }} > {{ t }}.lower_bound and ({{ t }}.up_to is null or {{ billable }} <= {{ t }}.up_to)
                then {{ _blocks(billable, t ~ '.block_size', pm ~ '.rounding') }} * {{ t }}.unit_price + {{ t }}.flat_fee
            when {{ billable }} = 0 and {{ t }}.is_first_tier and {{ pm }}.flat_fee_from_zero
                then {{ t }}.flat_fee
            else 0
        end
    when 'package' then
        case
            when {{ t }}.is_first_tier and {{ billable }} > 0
                then {{ _blocks(billable, 'coalesce(' ~ pm ~ '.package_size, 1)', pm ~ '.rounding') }} * {{ t }}.unit_price
            else 0
        end
    when 'flat' then
        case
            when {{ t }}.is_first_tier and ({{ billable }} > 0 or {{ pm }}.flat_fee_from_zero) then {{ t }}.flat_fee
            else 0
        end
    else 0
end
{%- endmacro %}

{#- `units` counted in blocks of `size` (null: units themselves): started blocks when rounding
    is 'up', completed ones when 'down'. -#}
{% macro _blocks(units, size, rounding) -%}
case
    when {{ size }} is null then {{ units }}
    when {{ rounding }} = 'down' then floor(({{ units }}) / {{ size }})
    else ceil(({{ units }}) / {{ size }})
end
{%- endmacro %}
