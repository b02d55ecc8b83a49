{#- Rated invoice lines per tenant and month (the open month is an estimate to date).
    One base-fee line (prorated by time on each plan when the plan changed during the month)
    and one line per charged meter and usage segment (int_usage_months_rated): a month on one
    plan version has one segment and its lines are keyed 'usage:<meter>'; a month with a plan
    change has one line per meter and segment, keyed 'usage:<meter>@<plan_id>.v<version>'
    (int_usage_segments.line_key_suffix) and described with the plan and the period covered. Each line is
    rounded half-up once to the currency's minor unit; zero-amount lines are omitted.
    Then the month-end plan's invoice floor and cap (int_plan_spend_limits) act on the total of
    those rounded lines: a 'minimum_commitment' line tops a smaller total up to the
    commitment, a negative 'spend_cap' line brings a larger total down to the cap.
    Prior-period adjustments ('adjustment:<meter>:<YYYY-MM>') are added by the billing assets
    when usage arrives after an invoice was finalized, not here. -#}

with

tenant_months as (select * from {{ ref('int_tenant_months_summarized') }}),
rated_usage as (select * from {{ ref('int_usage_months_rated') }}),
meters as (select * from {{ ref('stg_meterline__meters') }}),
labels as (select * from {{ ref('meter_labels') }}),
spend_limits as (select * from {{ ref('int_plan_spend_limits') }}),

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
        'usage:' || rated_usage.meter
            || case when rated_usage.segment_count > 1 then rated_usage.line_key_suffix else '' end
            as line_key,
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
            || ' ' || coalesce(meters.unit, '')
            || case
                when rated_usage.segment_count > 1 then {{ segment_note(
                    'rated_usage.plan_name', 'rated_usage.plan_version',
                    'rated_usage.usage_from', 'rated_usage.usage_to'
                ) }}
                else ''
            end as description
    from rated_usage
    left join meters on meters.meter = rated_usage.meter
    left join labels on labels.meter = rated_usage.meter
    where rated_usage.plan_id is not null
),

charged_lines as (
    select * from base_fee_lines where amount <> 0
    union all
    select * from usage_lines where amount <> 0
),

limited_months as (
    select
        tenant_months.tenant_id,
        tenant_months.month,
        tenant_months.plan_id,
        tenant_months.currency,
        coalesce((
            select sum(charged_lines.amount) from charged_lines
            where charged_lines.tenant_id = tenant_months.tenant_id
                and charged_lines.month = tenant_months.month
        ), 0) as total_amount,
        {{ to_minor_units('spend_limits.minimum_commitment', 'tenant_months.minor_unit') }} as floor_amount,
        {{ to_minor_units('spend_limits.maximum_spend', 'tenant_months.minor_unit') }} as cap_amount,
        tenant_months.minor_unit
    from tenant_months
    inner join spend_limits
        on spend_limits.plan_id = tenant_months.plan_id
        and spend_limits.plan_version = tenant_months.plan_version
),

spend_limit_lines as (
    select
        tenant_id,
        month,
        line.line_key,
        line.line_key as line_type,
        null::text as meter,
        plan_id,
        1::numeric as quantity,
        1::numeric as billable_quantity,
        line.amount / (10::numeric ^ minor_unit) as amount_exact,
        line.amount,
        currency,
        line.description
    from limited_months
    cross join lateral (
        select 'minimum_commitment' as line_key, floor_amount - total_amount as amount,
            'Minimum commitment top-up' as description
        where total_amount < floor_amount
        union all
        select 'spend_cap', cap_amount - total_amount, 'Spend cap'
        where total_amount > cap_amount
    ) as line
),

final as (
    select * from charged_lines
    union all
    select * from spend_limit_lines
)

-- the contract's types (_billing__models.yml); amount is integer minor units
select
    tenant_id,
    month,
    line_key,
    line_type,
    meter,
    plan_id,
    quantity,
    billable_quantity,
    amount_exact,
    amount::bigint as amount,
    currency,
    description
from final
