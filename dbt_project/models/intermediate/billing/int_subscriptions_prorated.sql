{#- One row per subscription (plan period) and calendar month (UTC) it overlaps, up to the month
    of as_of, with the share of the month spent on that plan, priced on the plan version the
    subscription pays (never the latest catalog). Base fees are prorated by exact
    time: covered seconds / seconds in the month. An open subscription covers the rest of the
    current month (the invoice for a month assumes no further change). -#}

with

subscriptions as (select * from {{ ref('stg_meterline__subscriptions') }}),
plans as (select * from {{ ref('stg_meterline__plans') }}),

months as (
    select
        subscriptions.subscription_id,
        series.month_start
    from subscriptions
    cross join lateral generate_series(
        date_trunc('month', subscriptions.effective_from, 'UTC'),
        least(
            coalesce(subscriptions.effective_to, 'infinity'::timestamptz),
            {{ as_of_month_start() }} + interval '1 month'
        ) - interval '1 microsecond',
        interval '1 month'
    ) as series (month_start)
),

covered as (
    select
        subscriptions.subscription_id,
        subscriptions.tenant_id,
        subscriptions.plan_id,
        subscriptions.plan_version,
        subscriptions.effective_from,
        subscriptions.effective_to,
        months.month_start,
        months.month_start + interval '1 month' as month_end,
        greatest(subscriptions.effective_from, months.month_start) as covered_from,
        least(
            coalesce(subscriptions.effective_to, 'infinity'::timestamptz),
            months.month_start + interval '1 month'
        ) as covered_to
    from subscriptions
    inner join months on months.subscription_id = subscriptions.subscription_id
),

final as (
    select
        covered.subscription_id,
        covered.tenant_id,
        (covered.month_start at time zone 'UTC')::date as month,
        covered.month_start,
        covered.month_end,
        covered.plan_id,
        covered.plan_version,
        plans.plan_name,
        plans.base_fee,
        plans.currency,
        covered.covered_from,
        covered.covered_to,
        extract(epoch from covered.covered_to - covered.covered_from)::numeric as covered_seconds,
        extract(epoch from covered.month_end - covered.month_start)::numeric as month_seconds,
        extract(epoch from covered.covered_to - covered.covered_from)::numeric
            / extract(epoch from covered.month_end - covered.month_start)::numeric as month_fraction,
        -- multiply before dividing: 29 * 15 days / 30 days is exactly 14.5
        plans.base_fee * extract(epoch from covered.covered_to - covered.covered_from)::numeric
            / extract(epoch from covered.month_end - covered.month_start)::numeric as base_fee_amount,
        covered.covered_to >= covered.month_end as covers_month_end,
        row_number() over (
            partition by covered.tenant_id, covered.month_start
            order by covered.effective_from desc
        ) = 1 as is_last_in_month
    from covered
    inner join plans
        on plans.plan_id = covered.plan_id and plans.plan_version = covered.plan_version
)

select * from final
