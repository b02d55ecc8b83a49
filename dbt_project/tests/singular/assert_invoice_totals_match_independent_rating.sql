{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}
{#- Every invoice of fct_invoices against an independent recomputation, written apart from the
    billing models and their macros (no int_* model, no rated_amount, no to_minor_units, no
    rollup): only the plan history, the catalog, the currencies seed and the raw events.

    expected invoice = one per tenant and month in which a plan was in force, up to the month of
      as_of, on the plan whose time in the month ends last (in force at month end, else the last
      one before a cancellation), in the tenant's currency;
    base fee  = sum over the plan terms overlapping the month of base_fee x seconds of the term
      in the month (in_force intersected with the month; an open term runs to the month end)
      / seconds in the month, rounded once half-up to the currency's minor unit (no line when
      the currency's minor unit is unknown);
    segments  = the month cut at each plan change: consecutive terms on the same plan version
      are one segment; the first segment starts at the month start, each one ends where the
      next one's first term starts, the last at the month end; a month before the one
      meterline.rating_rules names for 'usage_segments' is one segment on that plan;
    usage     = per segment and meter, the raw events that occurred in the segment aggregated by
      the meter's aggregation (sum, count, max, the latest event for last, distinct dimension
      values for unique_count), priced on the segment's plan version (graduated, volume,
      package, flat; none or unlisted: 0) over max(0, quantity - included) with its price
      tiers, each rounded half-up to the minor unit (2 digits when unknown);
    total     = base fee + usage; line_count = the non-zero ones among them.
    fct_invoice_lines holds no prior-period adjustments (the billing assets add those to
    meterline.invoice_lines), so there is no adjustment term.

    Also, every invoice line belongs to an invoice. With vars min_date/max_date only the months
    overlapping that window are recomputed (an hourly run reads those months' events only). -#}
{%- set min_date = var('min_date', none) -%}
{%- set max_date = var('max_date', none) -%}

with

tenants as (select * from {{ ref('stg_meterline__tenants') }}),
plan_history as (select * from {{ ref('stg_meterline__subscriptions') }}),
plans as (select * from {{ ref('stg_meterline__plans') }}),
plan_meters as (select * from {{ ref('stg_meterline__plan_meters') }}),
price_tiers as (select * from {{ ref('stg_meterline__price_tiers') }}),
meters as (select * from {{ ref('stg_meterline__meters') }}),
currencies as (select * from {{ ref('currencies') }}),
-- not materialized: each use scans the events itself, never a copy of the whole table
events as not materialized (select * from {{ ref('stg_raw__usage_events') }}),
invoices as (select * from {{ ref('fct_invoices') }}),
lines as (select * from {{ ref('fct_invoice_lines') }}),

-- calendar months (UTC) from the first plan term to the month of as_of
months as (
    select
        series.month::date as month,
        series.month at time zone 'UTC' as month_start,
        (series.month + interval '1 month') at time zone 'UTC' as month_end
    from generate_series(
        (select date_trunc('month', min(effective_from) at time zone 'UTC') from plan_history),
        {{ as_of_month_start() }} at time zone 'UTC',
        interval '1 month'
    ) as series (month)
    {%- if min_date and max_date %}
    where series.month + interval '1 month' > '{{ min_date }}'::timestamptz at time zone 'UTC'
      and series.month < '{{ max_date }}'::timestamptz at time zone 'UTC'
    {%- endif %}
),

-- the part of each plan term inside each month it overlaps
terms as (
    select
        plan_history.tenant_id,
        plan_history.plan_id,
        plan_history.plan_version,
        plan_history.in_force,
        months.month,
        months.month_start,
        months.month_end,
        plan_history.in_force * tstzrange(months.month_start, months.month_end) as in_month
    from plan_history
    inner join months on plan_history.in_force && tstzrange(months.month_start, months.month_end)
),

base_fees as (
    select
        terms.tenant_id,
        terms.month,
        sum(
            plans.base_fee * extract(epoch from upper(terms.in_month) - lower(terms.in_month))::numeric
                / extract(epoch from terms.month_end - terms.month_start)::numeric
        ) as base_fee_exact
    from terms
    inner join plans on plans.plan_id = terms.plan_id and plans.plan_version = terms.plan_version
    group by terms.tenant_id, terms.month
),

month_end_plans as (
    select distinct on (terms.tenant_id, terms.month)
        terms.tenant_id,
        terms.month,
        terms.plan_id,
        terms.plan_version
    from terms
    order by terms.tenant_id, terms.month, upper(terms.in_month) desc, lower(terms.in_force) desc
),

expected_invoices as (
    select
        month_end_plans.tenant_id,
        month_end_plans.month,
        month_end_plans.plan_id,
        month_end_plans.plan_version,
        coalesce(tenants.currency, plans.currency) as currency,
        currencies.minor_unit,
        base_fees.base_fee_exact
    from month_end_plans
    inner join base_fees using (tenant_id, month)
    inner join plans
        on plans.plan_id = month_end_plans.plan_id
        and plans.plan_version = month_end_plans.plan_version
    left join tenants on tenants.tenant_id = month_end_plans.tenant_id
    left join currencies on currencies.currency = coalesce(tenants.currency, plans.currency)
),

-- the month cut at each change of plan version: a term opens a segment unless it is on the
-- version of the term before it
term_changes as (
    select
        terms.*,
        (terms.plan_id, terms.plan_version) is distinct from (
            lag(terms.plan_id) over by_start, lag(terms.plan_version) over by_start
        ) and (
            lag(terms.plan_id) over by_start is null
            or terms.month >= coalesce((
                select max(rules.effective_from)
                from {{ source('meterline', 'rating_rules') }} as rules
                where rules.rule = 'usage_segments'
            ), '-infinity'::date)
        ) as opens_segment
    from terms
    window by_start as (partition by terms.tenant_id, terms.month order by lower(terms.in_month))
),

term_runs as (
    select
        term_changes.*,
        count(*) filter (where opens_segment) over (
            partition by tenant_id, month order by lower(in_month)
            rows unbounded preceding
        ) as segment_no
    from term_changes
),

segment_starts as (
    select
        tenant_id,
        month,
        segment_no,
        (array_agg(plan_id order by lower(in_month) desc))[1] as plan_id,
        (array_agg(plan_version order by lower(in_month) desc))[1] as plan_version,
        min(month_start) as month_start,
        min(month_end) as month_end,
        min(lower(in_month)) as first_start
    from term_runs
    group by tenant_id, month, segment_no
),

segments as (
    select
        tenant_id,
        month,
        segment_no,
        plan_id,
        plan_version,
        case when segment_no = 1 then month_start else first_start end as window_from,
        coalesce(
            lead(first_start) over (partition by tenant_id, month order by segment_no), month_end
        ) as window_to
    from segment_starts
),

-- the events of each segment (matched on the month first, then on the instant)
segment_events as (
    select segments.segment_no, segments.month, events.*
    from events
    inner join segments
        on segments.tenant_id = events.tenant_id
        and segments.month = date_trunc('month', events.occurred_at at time zone 'UTC')::date
        and events.occurred_at >= segments.window_from
        and events.occurred_at < segments.window_to
    {%- if min_date and max_date %}
    where events.occurred_at >= (select min(month_start) from months)
      and events.occurred_at < (select max(month_end) from months)
    {%- endif %}
),

-- per tenant, segment and meter: the additive aggregates of the events and the instant of
-- the latest one
event_totals as (
    select
        tenant_id,
        meter,
        month,
        segment_no,
        sum(value) as sum_value,
        count(*) as event_count,
        max(value) as max_value,
        max(occurred_at) as last_at
    from segment_events
    group by 1, 2, 3, 4
),

-- unique_count meters: how many distinct values of the meter's dimension the segment saw
distinct_values as (
    select tenant_id, meter, month, segment_no, count(dimension_value) as distinct_count
    from (
        select distinct
            segment_events.tenant_id,
            segment_events.meter,
            segment_events.month,
            segment_events.segment_no,
            segment_events.dimensions ->> meters.unique_dimension as dimension_value
        from segment_events
        inner join meters on meters.meter = segment_events.meter
        where meters.aggregation = 'unique_count'
    ) as segment_values
    group by tenant_id, meter, month, segment_no
),

-- last meters: the value of the segment's latest event (ties: the greatest event_id), found
-- through the index on occurred_at
latest_values as (
    select
        event_totals.tenant_id,
        event_totals.meter,
        event_totals.month,
        event_totals.segment_no,
        latest.value
    from event_totals
    inner join meters using (meter)
    cross join lateral (
        select events.value
        from events
        where events.occurred_at = event_totals.last_at
          and events.tenant_id = event_totals.tenant_id
          and events.meter = event_totals.meter
        order by events.event_id desc
        limit 1
    ) as latest
    where meters.aggregation = 'last'
),

quantities as (
    select
        event_totals.tenant_id,
        event_totals.meter,
        event_totals.month,
        event_totals.segment_no,
        case meters.aggregation
            when 'sum' then event_totals.sum_value
            when 'count' then event_totals.event_count::numeric
            when 'max' then event_totals.max_value
            when 'unique_count' then coalesce(distinct_values.distinct_count, 0)::numeric
            when 'last' then latest_values.value
        end as quantity
    from event_totals
    inner join meters using (meter)
    left join distinct_values using (tenant_id, meter, month, segment_no)
    left join latest_values using (tenant_id, meter, month, segment_no)
),

-- usage of a segment, and what the segment's plan version charges for it
billables as (
    select
        quantities.tenant_id,
        quantities.meter,
        quantities.month,
        quantities.segment_no,
        segments.plan_id,
        segments.plan_version,
        expected_invoices.minor_unit,
        plan_meters.pricing_model,
        plan_meters.package_size,
        greatest(quantities.quantity - plan_meters.included_quantity, 0) as billable
    from quantities
    inner join segments using (tenant_id, month, segment_no)
    inner join expected_invoices using (tenant_id, month)
    left join plan_meters
        on plan_meters.plan_id = segments.plan_id
        and plan_meters.plan_version = segments.plan_version
        and plan_meters.meter = quantities.meter
),

tiers as (
    select
        price_tiers.*,
        coalesce(
            lag(up_to) over (partition by plan_id, plan_version, meter order by tier_index), 0
        ) as tier_floor,
        tier_index = min(tier_index) over (partition by plan_id, plan_version, meter) as is_first
    from price_tiers
),

-- graduated: every billable unit at the price of the tier it falls in, plus the flat fee of
-- each tier reached
graduated as (
    select
        billables.tenant_id,
        billables.meter,
        billables.month,
        billables.segment_no,
        sum(
            greatest(least(billables.billable, coalesce(tiers.up_to, billables.billable)) - tiers.tier_floor, 0)
                * tiers.unit_price
            + case when billables.billable > tiers.tier_floor then tiers.flat_fee else 0 end
        ) as amount
    from billables
    inner join tiers using (plan_id, plan_version, meter)
    where billables.pricing_model = 'graduated'
    group by billables.tenant_id, billables.meter, billables.month, billables.segment_no
),

-- volume: all billable units at the price of the first tier reaching the total
volume as (
    select distinct on (billables.tenant_id, billables.meter, billables.month, billables.segment_no)
        billables.tenant_id,
        billables.meter,
        billables.month,
        billables.segment_no,
        billables.billable * tiers.unit_price + tiers.flat_fee as amount
    from billables
    inner join tiers using (plan_id, plan_version, meter)
    where billables.pricing_model = 'volume'
      and billables.billable > 0
      and (tiers.up_to is null or tiers.up_to >= billables.billable)
    order by billables.tenant_id, billables.meter, billables.month, billables.segment_no,
        tiers.tier_index
),

-- package: whole packages at the first tier's unit price; flat: the first tier's flat fee
package_and_flat as (
    select
        billables.tenant_id,
        billables.meter,
        billables.month,
        billables.segment_no,
        case billables.pricing_model
            when 'package' then
                ceil(billables.billable / coalesce(billables.package_size, 1)) * tiers.unit_price
            else tiers.flat_fee
        end as amount
    from billables
    inner join tiers using (plan_id, plan_version, meter)
    where billables.pricing_model in ('package', 'flat')
      and billables.billable > 0
      and tiers.is_first
),

usage_charges as (
    select
        billables.tenant_id,
        billables.month,
        round(
            coalesce(graduated.amount, volume.amount, package_and_flat.amount, 0)
                * power(10::numeric, coalesce(billables.minor_unit, 2))
        )::bigint as amount
    from billables
    left join graduated using (tenant_id, meter, month, segment_no)
    left join volume using (tenant_id, meter, month, segment_no)
    left join package_and_flat using (tenant_id, meter, month, segment_no)
),

usage_totals as (
    select
        tenant_id,
        month,
        sum(amount) as usage_amount,
        count(*) filter (where amount <> 0) as usage_lines
    from usage_charges
    group by tenant_id, month
),

expected as (
    select
        expected_invoices.tenant_id,
        expected_invoices.month,
        expected_invoices.plan_id,
        expected_invoices.currency,
        coalesce(
            round(
                expected_invoices.base_fee_exact * power(10::numeric, expected_invoices.minor_unit)
            )::bigint,
            0
        ) as base_fee_amount,
        coalesce(usage_totals.usage_amount, 0) as usage_amount,
        coalesce(usage_totals.usage_lines, 0) as usage_lines
    from expected_invoices
    left join usage_totals using (tenant_id, month)
),

checked_invoices as (
    select invoices.*
    from invoices
    inner join months on months.month = invoices.month
),

invoice_mismatches as (
    select
        'invoice differs from its recomputation' as problem,
        coalesce(invoices.tenant_id, expected.tenant_id) as tenant_id,
        coalesce(invoices.month, expected.month) as month,
        invoices.total_amount,
        expected.base_fee_amount + expected.usage_amount as expected_total_amount,
        invoices.base_fee_amount,
        expected.base_fee_amount as expected_base_fee_amount,
        invoices.usage_amount,
        expected.usage_amount as expected_usage_amount,
        invoices.line_count,
        (expected.base_fee_amount <> 0)::integer + expected.usage_lines as expected_line_count,
        invoices.plan_id,
        expected.plan_id as expected_plan_id,
        invoices.currency,
        expected.currency as expected_currency
    from checked_invoices as invoices
    full outer join expected
        on expected.tenant_id = invoices.tenant_id and expected.month = invoices.month
    where invoices.tenant_id is null
       or expected.tenant_id is null
       or invoices.total_amount <> expected.base_fee_amount + expected.usage_amount
       or invoices.base_fee_amount <> expected.base_fee_amount
       or invoices.usage_amount <> expected.usage_amount
       or invoices.line_count <> (expected.base_fee_amount <> 0)::integer + expected.usage_lines
       or invoices.plan_id is distinct from expected.plan_id
       or invoices.currency is distinct from expected.currency
),

orphan_lines as (
    select distinct
        'invoice line without an invoice' as problem,
        lines.tenant_id,
        lines.month
    from lines
    where not exists (
        select 1 from invoices
        where invoices.tenant_id = lines.tenant_id and invoices.month = lines.month
    )
)

select * from invoice_mismatches
union all
select
    problem, tenant_id, month,
    null, null, null, null, null, null, null, null, null, null, null, null
from orphan_lines
