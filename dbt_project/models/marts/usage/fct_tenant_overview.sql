{#- Every tenant with its current plan, the meter closest to (or furthest over) its limit this
    month, the estimated cost to date (this month's invoice so far) and the projected month-end
    cost: additive meters (sum, count) are extrapolated linearly over the elapsed share of the
    month (after a plan change this month: the earlier usage segments as rated, the current one
    extrapolated over its own elapsed share); peak, last and unique-count meters are taken as
    they stand. Each projected line is
    rated with the same rated_amount macro and rounded once, like an invoice line. -#}

with

tenants as (select * from {{ ref('stg_meterline__tenants') }}),
subscriptions as (select * from {{ ref('stg_meterline__subscriptions') }}),
meters as (select * from {{ ref('stg_meterline__meters') }}),

tenant_months as (
    select * from {{ ref('int_tenant_months_summarized') }}
    where month_start = {{ as_of_month_start() }}
),

quota as (
    select * from {{ ref('fct_quota_status') }}
    where month = ({{ as_of_month_start() }} at time zone 'UTC')::date
),

invoices as (
    select * from {{ ref('fct_invoices') }}
    where month = ({{ as_of_month_start() }} at time zone 'UTC')::date
),

rated_usage as (
    select * from {{ ref('int_usage_months_rated') }}
    where month = ({{ as_of_month_start() }} at time zone 'UTC')::date
),

current_plan as (
    select tenant_id, plan_id, effective_from as plan_since
    from subscriptions
    where in_force @> {{ as_of() }}
),

top_meter as (
    select distinct on (tenant_id)
        tenant_id,
        meter as top_meter,
        percent_used as top_percent,
        status as top_status
    from quota
    where percent_used is not null
    order by tenant_id, percent_used desc, meter
),

elapsed as (
    select
        extract(epoch from {{ as_of() }} - {{ as_of_month_start() }})::numeric
            / extract(epoch from ({{ as_of_month_start() }} + interval '1 month') - {{ as_of_month_start() }})::numeric
            as month_share
),

projected_usage as (
    select
        rated_usage.tenant_id,
        sum(case
            -- a month on one plan: the month's usage extrapolated over the elapsed share
            when rated_usage.segment_count = 1 then {{ to_minor_units(
                rated_amount(
                    'rated_usage.plan_id',
                    'rated_usage.meter',
                    "case when meters.aggregation in ('sum', 'count') and elapsed.month_share > 0
                          then rated_usage.quantity / elapsed.month_share
                          else rated_usage.quantity end",
                    'rated_usage.plan_version'
                ),
                'coalesce(rated_usage.minor_unit, 2)'
            ) }}
            -- a plan change this month: the segments before the current one as rated
            when rated_usage.usage_to <= {{ as_of() }} then rated_usage.amount
            -- the current segment's usage extrapolated over its elapsed share
            else {{ to_minor_units(
                rated_amount(
                    'rated_usage.plan_id',
                    'rated_usage.meter',
                    "case when meters.aggregation in ('sum', 'count') and " ~ as_of() ~ " > rated_usage.usage_from
                          then rated_usage.quantity
                              * extract(epoch from rated_usage.usage_to - rated_usage.usage_from)::numeric
                              / extract(epoch from " ~ as_of() ~ " - rated_usage.usage_from)::numeric
                          else rated_usage.quantity end",
                    'rated_usage.plan_version'
                ),
                'coalesce(rated_usage.minor_unit, 2)'
            ) }}
        end) as projected_usage_amount
    from rated_usage
    inner join meters on meters.meter = rated_usage.meter
    cross join elapsed
    where rated_usage.plan_id is not null
    group by rated_usage.tenant_id
),

final as (
    select
        tenants.tenant_id,
        tenants.tenant_name as name,
        current_plan.plan_id,
        current_plan.plan_since,
        tenants.status,
        top_meter.top_meter,
        top_meter.top_percent,
        coalesce(top_meter.top_status, 'ok') as quota_status,
        coalesce(invoices.total_amount, 0)::bigint as estimated_cost,
        (coalesce(invoices.base_fee_amount, 0) + coalesce(projected_usage.projected_usage_amount, 0))::bigint
            as projected_cost,
        coalesce(tenant_months.currency, tenants.currency) as currency
    from tenants
    left join current_plan on current_plan.tenant_id = tenants.tenant_id
    left join top_meter on top_meter.tenant_id = tenants.tenant_id
    left join invoices on invoices.tenant_id = tenants.tenant_id
    left join tenant_months on tenant_months.tenant_id = tenants.tenant_id
    left join projected_usage on projected_usage.tenant_id = tenants.tenant_id
)

select * from final
