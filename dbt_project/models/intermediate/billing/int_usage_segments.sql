{#- The usage segments of every tenant and month with a plan: the parts of the month that are
    rated each on their own plan version (issue 13: a mid-month plan change splits usage at the
    change instant). One row per tenant, month and segment.

    A segment is a run of consecutive plan terms (int_subscriptions_prorated) on the same plan
    version: a cancel-and-resubscribe to the same version, or two terms back to back on it, is
    one segment. Usage belongs to the segment in force when it occurred (occurred_at in
    [usage_from, usage_to)); the segments partition the month, so usage before the first plan of
    the month belongs to the first segment and usage after a cancellation (or in a gap between
    two plans) to the segment that started last before it.

    covered_seconds is the time the segment's plan was in force in the month: it prorates the
    included units and tier bounds of `prorate` meters (covered_seconds / month_seconds, the
    same share as the base fee). A month with one segment is rated as it always was (its
    invoice lines keep the keys 'usage:<meter>'); with several, each segment's lines are keyed
    'usage:<meter>' || line_key_suffix, e.g. 'usage:api_calls@pro.v2' ('#2', '#3'... when the
    same version comes back later in the month).

    The rule applies from the month meterline.rating_rules names for 'usage_segments'
    (migration 0010_usage_segments: the month after the last one invoiced before the upgrade;
    every month on a new installation). An earlier month is one segment on the plan in force at
    its end, as it was invoiced. -#}

with

terms as (select * from {{ ref('int_subscriptions_prorated') }}),

split_from as (
    select coalesce(max(effective_from), '-infinity'::date) as first_month
    from {{ source('meterline', 'rating_rules') }}
    where rule = 'usage_segments'
),

-- a new segment starts where the plan version differs from the previous term's (in a month
-- before the rule applies, only the month's first term starts one)
marked as (
    select
        terms.*,
        case
            when lag(terms.plan_id) over term_order is null then 1
            when terms.month < split_from.first_month then 0
            when lag(terms.plan_id) over term_order = terms.plan_id
                and lag(terms.plan_version) over term_order = terms.plan_version
                then 0
            else 1
        end as starts_segment
    from terms
    cross join split_from
    window term_order as (partition by terms.tenant_id, terms.month order by terms.covered_from)
),

numbered as (
    select
        marked.*,
        sum(starts_segment) over (
            partition by tenant_id, month order by covered_from
            rows between unbounded preceding and current row
        ) as segment_no
    from marked
),

segments as (
    select
        tenant_id,
        month,
        segment_no,
        min(month_start) as month_start,
        min(month_end) as month_end,
        -- the segment's plan version (in a month before the rule: the last one of the month)
        (array_agg(plan_id order by covered_from desc))[1] as plan_id,
        (array_agg(plan_version order by covered_from desc))[1] as plan_version,
        (array_agg(plan_name order by covered_from desc))[1] as plan_name,
        min(covered_from) as covered_from,
        max(covered_to) as covered_to,
        sum(covered_seconds) as covered_seconds,
        min(month_seconds) as month_seconds
    from numbered
    group by tenant_id, month, segment_no
),

final as (
    select
        tenant_id,
        month,
        segment_no::integer as segment_no,
        count(*) over tenant_month::integer as segment_count,
        month_start,
        month_end,
        plan_id,
        plan_version,
        plan_name,
        case when segment_no = 1 then month_start else covered_from end as usage_from,
        coalesce(lead(covered_from) over segment_order, month_end) as usage_to,
        covered_from,
        covered_to,
        covered_seconds,
        month_seconds,
        '@' || plan_id || '.v' || plan_version || case
            when row_number() over same_version > 1 then '#' || row_number() over same_version
            else ''
        end as line_key_suffix
    from segments
    window
        tenant_month as (partition by tenant_id, month),
        segment_order as (partition by tenant_id, month order by segment_no),
        same_version as (partition by tenant_id, month, plan_id, plan_version order by segment_no)
)

select * from final
