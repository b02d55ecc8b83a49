{#- Monthly usage of every tenant and meter, rated on the plan in force at the end of the month
    (int_tenant_months_summarized). `amount_exact` is the unrounded charge (trailing zeros trimmed) (macro rated_amount);
    `amount` is rounded half-up once to the currency's minor unit. Usage in a month without any
    plan is kept with a null plan and no charge. A meter its plan charges every month
    (flat_fee_from_zero, or min_amount > 0) gets a row with quantity 0 in a month without usage.
    A prorated meter's included units and tier bounds scale with the days in force. A
    percentage meter is rated from the month's raw events (stg_raw__usage_events). -#}

with

monthly_usage as (select * from {{ ref('fct_usage_monthly') }}),
tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
subscription_months as (select * from {{ ref('int_subscriptions_prorated') }}),
events as (select * from {{ ref('stg_raw__usage_events') }}),
plan_meters as (select * from {{ ref('int_plan_meters_priced') }}),

always_charged as (
    select tenant_months.tenant_id, tenant_months.month, plan_meters.meter, 0::numeric as quantity
    from tenant_months
    inner join plan_meters
        on plan_meters.plan_id = tenant_months.plan_id
        and plan_meters.plan_version = tenant_months.plan_version
    where plan_meters.pricing_model <> 'none'
        and (plan_meters.flat_fee_from_zero or coalesce(plan_meters.min_amount, 0) > 0)
),

-- UTC days from the first to the last day of the month with a plan (for prorated meters)
in_force as (
    select
        tenant_id,
        month,
        (max(covered_to - interval '1 microsecond')::date - min(covered_from)::date + 1) as days_in_force,
        (min(month_end)::date - min(month_start)::date) as days_in_month
    from subscription_months
    group by tenant_id, month
),

-- percentage pricing, per event in (occurred_at, event_id) order: value * rate / 100, plus
-- fixed_fee after the first free_events events, clamped into [per_event_min, per_event_max]
numbered_events as (
    select
        tenant_id,
        meter,
        value,
        date_trunc('month', occurred_at)::date as month,
        row_number() over (
            partition by tenant_id, meter, date_trunc('month', occurred_at)
            order by occurred_at, event_id
        ) as event_no
    from events
    where meter in (select meter from plan_meters where pricing_model = 'percentage')
),

percentage_charges as (
    select
        numbered_events.tenant_id,
        numbered_events.month,
        numbered_events.meter,
        sum(
            least(
                plan_meters.per_event_max,
                greatest(
                    plan_meters.per_event_min,
                    numbered_events.value * plan_meters.percentage_rate / 100
                    + case
                        when numbered_events.event_no > plan_meters.free_events then plan_meters.fixed_fee
                        else 0
                    end
                )
            )
        ) as events_amount
    from numbered_events
    inner join tenant_months
        on tenant_months.tenant_id = numbered_events.tenant_id
        and tenant_months.month::date = numbered_events.month
    inner join plan_meters
        on plan_meters.plan_id = tenant_months.plan_id
        and plan_meters.plan_version = tenant_months.plan_version
        and plan_meters.meter = numbered_events.meter
        and plan_meters.pricing_model = 'percentage'
    group by numbered_events.tenant_id, numbered_events.month, numbered_events.meter
),

usage as (
    select tenant_id, month, meter, quantity from monthly_usage
    union all
    select always_charged.*
    from always_charged
    where not exists (
        select 1 from monthly_usage
        where monthly_usage.tenant_id = always_charged.tenant_id
            and monthly_usage.month = always_charged.month
            and monthly_usage.meter = always_charged.meter
    )
),

rated as (
    select
        usage.tenant_id,
        usage.month,
        usage.meter,
        tenant_months.plan_id,
        tenant_months.plan_version,
        tenant_months.currency,
        tenant_months.minor_unit,
        usage.quantity,
        coalesce(plan_meters.pricing_model, 'none') as pricing_model,
        coalesce(plan_meters.included_quantity, 0) as included_quantity,
        trim_scale(greatest(0, usage.quantity - coalesce(plan_meters.included_quantity, 0))) as billable_quantity,
        trim_scale(case
            when plan_meters.pricing_model = 'percentage' then least(
                plan_meters.max_amount,
                greatest(plan_meters.min_amount, coalesce(percentage_charges.events_amount, 0))
            )
            else {{ rated_amount(
                'tenant_months.plan_id', 'usage.meter', 'usage.quantity', 'tenant_months.plan_version',
                'coalesce(in_force.days_in_force, 1)', 'coalesce(in_force.days_in_month, 1)'
            ) }}
        end) as amount_exact
    from usage
    left join tenant_months
        on tenant_months.tenant_id = usage.tenant_id and tenant_months.month = usage.month
    left join in_force on in_force.tenant_id = usage.tenant_id and in_force.month = usage.month
    left join plan_meters
        on plan_meters.plan_id = tenant_months.plan_id
        and plan_meters.plan_version = tenant_months.plan_version
        and plan_meters.meter = usage.meter
    left join percentage_charges
        on percentage_charges.tenant_id = usage.tenant_id
        and percentage_charges.month = usage.month::date
        and percentage_charges.meter = usage.meter
),

final as (
    select
        rated.*,
        {{ to_minor_units('rated.amount_exact', 'coalesce(rated.minor_unit, 2)') }} as amount
    from rated
)

select * from final
