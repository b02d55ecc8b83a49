{{ config(meta={'dagster': {'ref': {'name': 'fct_mrr_summary'}}}) }}
-- starting + new + expansion + contraction + churn + reactivation = ending, every month, and
-- each month starts where the previous one ended.
with summary as (
    select
        *,
        lag(ending) over (partition by currency order by month) as previous_ending,
        lag(month) over (partition by currency order by month) as previous_month
    from {{ ref('fct_mrr_summary') }}
)

select *
from summary
where starting + new + expansion + contraction + churn + reactivation <> ending
   or (previous_month is not null and starting <> previous_ending)
   or (previous_month is null and starting <> 0)
   or (previous_month is not null and previous_month <> (month - interval '1 month')::date)
