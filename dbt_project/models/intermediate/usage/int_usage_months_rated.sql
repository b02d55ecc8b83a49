{#- Monthly usage of every tenant and meter, rated per usage segment (int_usage_segments).
    A month on one plan version (one segment) is rated as always: its usage is the monthly
    rollup (fct_usage_monthly), rated on that version; a prorated meter's included units and
    tier bounds scale with the days in force (first to last UTC day with a plan).
    A month with a plan change has several segments: each segment's usage is aggregated from the
    deduplicated raw events that occurred in it (a change happens at any second, so the hourly
    rollup cannot split it) with the meter's aggregation (macro aggregate_events: sum, count,
    peak, latest value or distinct values within the segment), and rated on the segment's own
    version, tiers and included units starting from zero; a prorated meter scales them by the
    segment's share of the month (covered_seconds / month_seconds, like the base fee).
    `amount_exact` is the unrounded charge (trailing zeros trimmed) (macro rated_amount);
    `amount` is rounded half-up once to the currency's minor unit. Usage in a month without any
    plan is kept with a null plan and no charge. A meter its plan charges every month
    (flat_fee_from_zero, or min_amount > 0) gets a row with quantity 0 in each segment without
    usage. A percentage meter is rated per event of the segment (stg_raw__usage_events). -#}

with

monthly_usage as (select * from {{ ref('fct_usage_monthly') }}),
tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
subscription_months as (select * from {{ ref('int_subscriptions_prorated') }}),
segments as (select * from {{ ref('int_usage_segments') }}),
events as (select * from {{ ref('stg_raw__usage_events') }}),
meters as (select * from {{ ref('stg_meterline__meters') }}),
plan_meters as (select * from {{ ref('int_plan_meters_priced') }}),

split_segments as (
    select * from segments where segment_count > 1
),

-- usage of the months on one plan version: the monthly rollup, as segment 1
whole_month_usage as (
    select monthly_usage.tenant_id, monthly_usage.month, 1 as segment_no, monthly_usage.meter,
        monthly_usage.quantity
    from monthly_usage
    where not exists (
        select 1 from split_segments
        where split_segments.tenant_id = monthly_usage.tenant_id
            and split_segments.month = monthly_usage.month
    )
),

-- usage of each segment of a month with a plan change, from the events that occurred in it
segment_usage as (
    select
        split_segments.tenant_id,
        split_segments.month,
        split_segments.segment_no,
        events.meter,
        {{ aggregate_events('meters.aggregation') }} as quantity
    from split_segments
    cross join lateral (
        select tenant_id, event_id, meter, value, occurred_at, dimensions
        from {{ ref('stg_raw__usage_events') }} as e
        where e.tenant_id = split_segments.tenant_id
            and e.occurred_at >= split_segments.usage_from
            and e.occurred_at < split_segments.usage_to
        offset 0  -- keep the lateral: one index range scan per segment
    ) as events
    inner join meters on meters.meter = events.meter
    group by split_segments.tenant_id, split_segments.month, split_segments.segment_no,
        events.meter, meters.aggregation
),

metered as (
    select * from whole_month_usage
    union all
    select * from segment_usage
),

always_charged as (
    select segments.tenant_id, segments.month, segments.segment_no, plan_meters.meter,
        0::numeric as quantity
    from segments
    inner join plan_meters
        on plan_meters.plan_id = segments.plan_id
        and plan_meters.plan_version = segments.plan_version
    where plan_meters.pricing_model <> 'none'
        and (plan_meters.flat_fee_from_zero or coalesce(plan_meters.min_amount, 0) > 0)
),

usage as (
    select * from metered
    union all
    select always_charged.*
    from always_charged
    where not exists (
        select 1 from metered
        where metered.tenant_id = always_charged.tenant_id
            and metered.month = always_charged.month
            and metered.segment_no = always_charged.segment_no
            and metered.meter = always_charged.meter
    )
),

-- the share of the month that prorates a `prorate` meter: for a month on one version, UTC days
-- from the first to the last day of the month with a plan; for a segment, its seconds on the
-- plan out of the month's seconds
in_force as (
    select
        tenant_id,
        month,
        (max(covered_to - interval '1 microsecond')::date - min(covered_from)::date + 1)::numeric as days_in_force,
        (min(month_end)::date - min(month_start)::date)::numeric as days_in_month
    from subscription_months
    group by tenant_id, month
),

shares as (
    select
        segments.tenant_id,
        segments.month,
        segments.segment_no,
        case when segments.segment_count = 1 then in_force.days_in_force else segments.covered_seconds end as share_in_force,
        case when segments.segment_count = 1 then in_force.days_in_month else segments.month_seconds end as share_of
    from segments
    inner join in_force on in_force.tenant_id = segments.tenant_id and in_force.month = segments.month
),

-- percentage pricing, per event of the segment in (occurred_at, event_id) order:
-- value * rate / 100, plus fixed_fee after the first free_events events, clamped into
-- [per_event_min, per_event_max]
numbered_events as (
    select
        segments.tenant_id,
        segments.month,
        segments.segment_no,
        segments.plan_id,
        segments.plan_version,
        events.meter,
        events.value,
        row_number() over (
            partition by segments.tenant_id, segments.month, segments.segment_no, events.meter
            order by events.occurred_at, events.event_id
        ) as event_no
    from events
    inner join segments
        on segments.tenant_id = events.tenant_id
        and events.occurred_at >= segments.usage_from
        and events.occurred_at < segments.usage_to
    where events.meter in (select meter from plan_meters where pricing_model = 'percentage')
),

percentage_charges as (
    select
        numbered_events.tenant_id,
        numbered_events.month,
        numbered_events.segment_no,
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
    inner join plan_meters
        on plan_meters.plan_id = numbered_events.plan_id
        and plan_meters.plan_version = numbered_events.plan_version
        and plan_meters.meter = numbered_events.meter
        and plan_meters.pricing_model = 'percentage'
    group by numbered_events.tenant_id, numbered_events.month, numbered_events.segment_no,
        numbered_events.meter
),

rated as (
    select
        usage.tenant_id,
        usage.month,
        usage.meter,
        usage.segment_no,
        coalesce(segments.segment_count, 1) as segment_count,
        segments.plan_id,
        segments.plan_version,
        segments.plan_name,
        segments.usage_from,
        segments.usage_to,
        segments.line_key_suffix,
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
                'segments.plan_id', 'usage.meter', 'usage.quantity', 'segments.plan_version',
                'coalesce(shares.share_in_force, 1)', 'coalesce(shares.share_of, 1)'
            ) }}
        end) as amount_exact
    from usage
    left join tenant_months
        on tenant_months.tenant_id = usage.tenant_id and tenant_months.month = usage.month
    left join segments
        on segments.tenant_id = usage.tenant_id
        and segments.month = usage.month
        and segments.segment_no = usage.segment_no
    left join shares
        on shares.tenant_id = usage.tenant_id
        and shares.month = usage.month
        and shares.segment_no = usage.segment_no
    left join plan_meters
        on plan_meters.plan_id = segments.plan_id
        and plan_meters.plan_version = segments.plan_version
        and plan_meters.meter = usage.meter
    left join percentage_charges
        on percentage_charges.tenant_id = usage.tenant_id
        and percentage_charges.month = usage.month
        and percentage_charges.segment_no = usage.segment_no
        and percentage_charges.meter = usage.meter
),

final as (
    select
        rated.*,
        {{ to_minor_units('rated.amount_exact', 'coalesce(rated.minor_unit, 2)') }} as amount
    from rated
)

select * from final
