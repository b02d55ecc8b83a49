{#- The MRR bridge per month and currency: starting + new + expansion + contraction + churn +
    reactivation = ending. Movements are signed changes (contraction and churn are negative),
    so the bridge is a plain sum. Every month from the first MRR month to the month of as_of
    has a row, and a month's starting MRR is the previous month's ending MRR. -#}

with

mrr as (select * from {{ ref('fct_mrr') }}),

months as (
    {{ month_spine('mrr', 'currency', "month::timestamp at time zone 'UTC'") }}
),

movements as (
    select
        month,
        currency,
        sum(previous_mrr) as starting,
        sum(mrr_change) filter (where change_category = 'new') as new,
        sum(mrr_change) filter (where change_category = 'expansion') as expansion,
        sum(mrr_change) filter (where change_category = 'contraction') as contraction,
        sum(mrr_change) filter (where change_category = 'churn') as churn,
        sum(mrr_change) filter (where change_category = 'reactivation') as reactivation,
        sum(mrr) as ending,
        count(*) filter (where mrr > 0) as paying_tenants
    from mrr
    group by month, currency
),

final as (
    select
        months.month,
        months.currency,
        coalesce(movements.starting, 0)::bigint as starting,
        coalesce(movements.new, 0)::bigint as new,
        coalesce(movements.expansion, 0)::bigint as expansion,
        coalesce(movements.contraction, 0)::bigint as contraction,
        coalesce(movements.churn, 0)::bigint as churn,
        coalesce(movements.reactivation, 0)::bigint as reactivation,
        coalesce(movements.ending, 0)::bigint as ending,
        coalesce(movements.paying_tenants, 0)::integer as paying_tenants
    from months
    left join movements on movements.month = months.month and movements.currency = months.currency
)

select * from final
