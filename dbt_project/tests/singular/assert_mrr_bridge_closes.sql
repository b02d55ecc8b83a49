{{ config(meta={'dagster': {'ref': {'name': 'fct_mrr_summary'}}}) }}
-- starting + new + expansion + contraction + churn + reactivation = ending, every month, and
-- each month starts where the previous one ended.
-- And, computed independently of fct_mrr and its formula: each month's ending MRR equals the
-- monthly base fees of the plan versions in force at the month's last instant, read straight from the
-- plan history (the view meterline.plan_in_force) and the catalog.
with

subscriptions as (select * from {{ ref('stg_meterline__subscriptions') }}),
plans as (select * from {{ ref('stg_meterline__plans') }}),
currencies as (select * from {{ ref('currencies') }}),

summary as (
    select
        *,
        lag(ending) over (partition by currency order by month) as previous_ending,
        lag(month) over (partition by currency order by month) as previous_month
    from {{ ref('fct_mrr_summary') }}
),

in_force_at_month_end as (
    select
        summary.month,
        summary.currency,
        coalesce(sum({{ to_minor_units('plans.base_fee', 'currencies.minor_unit') }}), 0)
            as expected_ending
    from summary
    left join subscriptions
        on subscriptions.in_force
            @> ((summary.month + interval '1 month')::timestamp at time zone 'UTC'
                - interval '1 microsecond')
    left join plans
        on plans.plan_id = subscriptions.plan_id and plans.plan_version = subscriptions.plan_version
        and plans.currency = summary.currency
    left join currencies on currencies.currency = plans.currency
    group by summary.month, summary.currency
)

select summary.*, in_force_at_month_end.expected_ending
from summary
inner join in_force_at_month_end using (month, currency)
where starting + new + expansion + contraction + churn + reactivation <> ending
   or (previous_month is not null and starting <> previous_ending)
   or (previous_month is null and starting <> 0)
   or (previous_month is not null and previous_month <> (month - interval '1 month')::date)
   or ending <> in_force_at_month_end.expected_ending
