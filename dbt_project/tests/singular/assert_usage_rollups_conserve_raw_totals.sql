{{ config(meta={'dagster': {'ref': {'name': 'fct_usage_monthly'}}}) }}
{#- hourly = daily = monthly = raw events, per tenant, meter and month, for every aggregation
    (sums and counts add up, peaks are the same maximum, unique counts equal the distinct values
    of the raw events). With vars min_date/max_date only the months touching the window are
    checked against the rollups, and raw events only for the window's hours, so an hourly run
    stays cheap; a run without a window checks everything. -#}
{%- set min_date = var('min_date', none) -%}
{%- set max_date = var('max_date', none) -%}

with

meters as (select * from {{ ref('stg_meterline__meters') }}),

{% if min_date and max_date -%}
window_hours as (
    select
        date_trunc('hour', '{{ min_date }}'::timestamptz, 'UTC') as window_start,
        '{{ max_date }}'::timestamptz as window_end
),

raw_hourly as (
    select
        e.tenant_id,
        e.meter,
        date_trunc('hour', e.occurred_at, 'UTC') as hour,
        count(*) as event_count,
        sum(e.value) as sum_value,
        max(e.value) as max_value
    from {{ ref('stg_raw__usage_events') }} as e
    cross join window_hours as w
    where e.occurred_at >= w.window_start and e.occurred_at < w.window_end
    group by 1, 2, 3
),

hourly_vs_raw as (
    select
        'hourly vs raw' as check_name,
        coalesce(r.tenant_id, h.tenant_id) as tenant_id,
        coalesce(r.meter, h.meter) as meter,
        (coalesce(r.hour, h.hour) at time zone 'UTC')::date as period
    from raw_hourly as r
    inner join meters as m on m.meter = r.meter
    full outer join (
        select h.* from {{ ref('fct_usage_hourly') }} as h cross join window_hours as w
        where h.hour >= w.window_start and h.hour < w.window_end
    ) as h
        on h.tenant_id = r.tenant_id and h.meter = r.meter and h.hour = r.hour
    where r.event_count is distinct from h.event_count
       or (m.aggregation = 'sum' and r.sum_value is distinct from h.quantity)
       or (m.aggregation = 'count' and r.event_count is distinct from h.quantity)
       or (m.aggregation = 'max' and r.max_value is distinct from h.quantity)
),

checked_months as (
    select generate_series(
        date_trunc('month', '{{ min_date }}'::timestamptz, 'UTC'),
        '{{ max_date }}'::timestamptz - interval '1 microsecond',
        interval '1 month'
    ) as month_start
),
{%- else -%}
raw_monthly as (
    select
        e.tenant_id,
        e.meter,
        date_trunc('month', e.occurred_at, 'UTC') as month_start,
        count(*) as event_count,
        sum(e.value) as sum_value,
        max(e.value) as max_value
    from {{ ref('stg_raw__usage_events') }} as e
    group by 1, 2, 3
),

raw_unique as (
    select
        e.tenant_id,
        e.meter,
        date_trunc('month', e.occurred_at, 'UTC') as month_start,
        count(distinct e.dimensions ->> m.unique_dimension) as distinct_count
    from {{ ref('stg_raw__usage_events') }} as e
    inner join meters as m on m.meter = e.meter
    where m.aggregation = 'unique_count'
    group by 1, 2, 3
),

monthly_vs_raw as (
    select
        'monthly vs raw' as check_name,
        coalesce(r.tenant_id, mo.tenant_id) as tenant_id,
        coalesce(r.meter, mo.meter) as meter,
        coalesce((r.month_start at time zone 'UTC')::date, mo.month) as period
    from (select r.* from raw_monthly r inner join meters using (meter)) as r
    inner join meters as m on m.meter = r.meter
    left join raw_unique as u
        on u.tenant_id = r.tenant_id and u.meter = r.meter and u.month_start = r.month_start
    full outer join {{ ref('fct_usage_monthly') }} as mo
        on mo.tenant_id = r.tenant_id and mo.meter = r.meter
        and mo.month = (r.month_start at time zone 'UTC')::date
    where r.event_count is distinct from mo.event_count
       or (m.aggregation = 'sum' and r.sum_value is distinct from mo.quantity)
       or (m.aggregation = 'count' and r.event_count is distinct from mo.quantity)
       or (m.aggregation = 'max' and r.max_value is distinct from mo.quantity)
       or (m.aggregation = 'unique_count' and u.distinct_count is distinct from mo.quantity)
),
{%- endif %}

hourly_by_month as (
    select
        h.tenant_id,
        h.meter,
        (date_trunc('month', h.hour, 'UTC') at time zone 'UTC')::date as month,
        sum(h.event_count) as event_count,
        sum(h.quantity) as sum_quantity,
        max(h.quantity) as max_quantity
    from {{ ref('fct_usage_hourly') }} as h
    {%- if min_date and max_date %}
    inner join checked_months as c
        on h.hour >= c.month_start and h.hour < c.month_start + interval '1 month'
    {%- endif %}
    group by 1, 2, 3
),

daily_by_month as (
    select
        d.tenant_id,
        d.meter,
        date_trunc('month', d.day)::date as month,
        sum(d.event_count) as event_count,
        sum(d.quantity) as sum_quantity,
        max(d.quantity) as max_quantity
    from {{ ref('fct_usage_daily') }} as d
    {%- if min_date and max_date %}
    inner join checked_months as c
        on d.day >= (c.month_start at time zone 'UTC')::date
        and d.day < ((c.month_start + interval '1 month') at time zone 'UTC')::date
    {%- endif %}
    group by 1, 2, 3
),

monthly as (
    select mo.*
    from {{ ref('fct_usage_monthly') }} as mo
    {%- if min_date and max_date %}
    inner join checked_months as c on mo.month = (c.month_start at time zone 'UTC')::date
    {%- endif %}
),

rollups_agree as (
    select
        'hourly vs daily vs monthly' as check_name,
        coalesce(h.tenant_id, d.tenant_id, mo.tenant_id) as tenant_id,
        coalesce(h.meter, d.meter, mo.meter) as meter,
        coalesce(h.month, d.month, mo.month) as period
    from hourly_by_month as h
    full outer join daily_by_month as d
        on d.tenant_id = h.tenant_id and d.meter = h.meter and d.month = h.month
    full outer join monthly as mo
        on mo.tenant_id = coalesce(h.tenant_id, d.tenant_id)
        and mo.meter = coalesce(h.meter, d.meter)
        and mo.month = coalesce(h.month, d.month)
    left join meters as m on m.meter = coalesce(h.meter, d.meter, mo.meter)
    where h.event_count is distinct from d.event_count
       or d.event_count is distinct from mo.event_count
       or (m.aggregation in ('sum', 'count')
           and (h.sum_quantity is distinct from d.sum_quantity or d.sum_quantity is distinct from mo.quantity))
       or (m.aggregation = 'max'
           and (h.max_quantity is distinct from d.max_quantity or d.max_quantity is distinct from mo.quantity))
)

select * from rollups_agree
union all
{% if min_date and max_date -%}
select * from hourly_vs_raw
{%- else -%}
select * from monthly_vs_raw
{%- endif %}
