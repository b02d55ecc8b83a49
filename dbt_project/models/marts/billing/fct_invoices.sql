{#- One row per tenant and month with a plan: the invoice total is the sum of its rounded
    lines (0 with no charged line). `is_closed` is false for the open month (estimate). -#}

with

tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
lines as (select * from {{ ref('fct_invoice_lines') }}),

totals as (
    select
        tenant_id,
        month,
        sum(amount)::bigint as total_amount,
        sum(amount) filter (where line_type = 'base_fee')::bigint as base_fee_amount,
        sum(amount) filter (where line_type = 'usage')::bigint as usage_amount,
        count(*) as line_count
    from lines
    group by tenant_id, month
),

final as (
    select
        tenant_months.tenant_id,
        tenant_months.month,
        tenant_months.plan_id,
        tenant_months.currency,
        coalesce(totals.total_amount, 0)::bigint as total_amount,
        coalesce(totals.base_fee_amount, 0)::bigint as base_fee_amount,
        coalesce(totals.usage_amount, 0)::bigint as usage_amount,
        coalesce(totals.line_count, 0)::integer as line_count,
        tenant_months.month_end <= {{ as_of() }} as is_closed
    from tenant_months
    left join totals
        on totals.tenant_id = tenant_months.tenant_id and totals.month = tenant_months.month
)

select * from final
