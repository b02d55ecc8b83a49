{#- Rated invoice lines per tenant and month (the open month is an estimate to date).
    One base-fee line (prorated by time on each plan when the plan changed during the month)
    and one line per charged meter, rated on the plan in force at month end. Each line is
    rounded half-up once to the currency's minor unit; zero-amount lines are omitted.
    Prior-period adjustments ('adjustment:<meter>:<YYYY-MM>') are added by the billing assets
    when usage arrives after an invoice was finalized, not here. -#}

with

tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
rated_usage as (select * from {{ ref('int_usage_months_rated') }}),
meters as (select * from {{ ref('stg_meterline__meters') }}),
labels as (select * from {{ ref('meter_labels') }}),

base_fee_lines as (
    select
        tenant_id,
        month,
        'base_fee' as line_key,
        'base_fee' as line_type,
        null::text as meter,
        plan_id,
        1::numeric as quantity,
        1::numeric as billable_quantity,
        base_fee_amount as amount_exact,
        {{ to_minor_units('base_fee_amount', 'minor_unit') }} as amount,
        currency,
        base_fee_description as description
    from tenant_months
),

usage_lines as (
    select
        rated_usage.tenant_id,
        rated_usage.month,
        'usage:' || rated_usage.meter as line_key,
        'usage' as line_type,
        rated_usage.meter,
        rated_usage.plan_id,
        rated_usage.quantity,
        rated_usage.billable_quantity,
        rated_usage.amount_exact,
        rated_usage.amount,
        rated_usage.currency,
        {{ meter_label('labels.label', 'rated_usage.meter') }}
            || ': ' || {{ format_quantity('rated_usage.quantity') }}
            || ' ' || coalesce(meters.unit, '') as description
    from rated_usage
    left join meters on meters.meter = rated_usage.meter
    left join labels on labels.meter = rated_usage.meter
    where rated_usage.plan_id is not null
),

final as (
    select * from base_fee_lines where amount <> 0
    union all
    select * from usage_lines where amount <> 0
)

select * from final
