{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}
-- An invoice's total is the sum of its rounded lines, and every line belongs to an invoice.
with lines as (
    select tenant_id, month, sum(amount) as lines_total, count(*) as line_count
    from {{ ref('fct_invoice_lines') }}
    group by tenant_id, month
)

select
    coalesce(i.tenant_id, l.tenant_id) as tenant_id,
    coalesce(i.month, l.month) as month,
    i.total_amount,
    l.lines_total
from {{ ref('fct_invoices') }} as i
full outer join lines as l on l.tenant_id = i.tenant_id and l.month = i.month
where i.tenant_id is null
   or i.total_amount <> coalesce(l.lines_total, 0)
   or i.line_count <> coalesce(l.line_count, 0)
