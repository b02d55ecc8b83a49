"""What a quota alert and a failed-run alert say: subject, text and structured payload."""

from __future__ import annotations

from decimal import Decimal

from alerts.context import AlertContext
from alerts.notification import Notification
from meterline.core.numbers import format_quantity


def _at_limit(ctx: AlertContext, *, period: str, threshold: int) -> str:
    """What happens at the limit: refusals (hard limit) or overage billing (soft limit)."""
    if threshold >= 100:
        return (
            f"Further {ctx.meter} usage is refused (HTTP 402) until the next billing month."
            if ctx.hard_limit
            else f"Usage above the limit is billed as overage on the {period} invoice."
        )
    return (
        f"At 100 % further {ctx.meter} usage will be refused (HTTP 402) until the next billing month."
        if ctx.hard_limit
        else "Usage above the limit will be billed as overage."
    )


def _upgrade(ctx: AlertContext, plan: str) -> str:
    """How to raise the limit: the next plan up (``plans.upgrade_to``) or sales."""
    if not ctx.upgrade_to:
        return f"{plan} is the largest plan; contact sales for a custom limit."
    more = (
        f", which allows {format_quantity(ctx.upgrade_limit)} {ctx.unit}"
        if ctx.upgrade_limit is not None
        else " (no limit on this meter)"
    )
    return (
        f"To raise the limit, upgrade to the {ctx.upgrade_name or ctx.upgrade_to} plan "
        f"(plan id `{ctx.upgrade_to}`){more}: `meterline tenants set-plan {ctx.tenant_id} "
        f"{ctx.upgrade_to}`, or ask your account administrator."
    )


def build_notification(
    ctx: AlertContext,
    *,
    period: str,
    threshold: int,
    quantity: Decimal,
    limit: Decimal,
    percent: Decimal,
    audience: str = "tenant",
) -> Notification:
    """The message for one alert: tenant, meter, usage, limit, percent and how to upgrade."""
    plan = ctx.plan_name or ctx.plan_id or "current"
    usage = f"{format_quantity(quantity)} of {format_quantity(limit)} {ctx.unit}"
    if threshold >= 100:
        headline = f"{ctx.tenant_id} reached its {ctx.meter} limit"
    else:
        headline = f"{ctx.tenant_id} used {percent} % of its {ctx.meter} limit"
    subject = f"[Meterline] {headline} ({threshold} % alert, {period})"
    greeting = "Hello," if audience == "admin" else f"Hello {ctx.tenant_name},"
    text_body = "\n".join(
        [
            greeting,
            "",
            f"Tenant {ctx.tenant_id} ({ctx.tenant_name}) on the {plan} plan has used {usage} "
            f"of {ctx.meter} in {period}: {percent} % of the limit, crossing the {threshold} % "
            "alert threshold.",
            "",
            _at_limit(ctx, period=period, threshold=threshold),
            _upgrade(ctx, plan),
            "",
            "You receive this once per threshold and month. -- Meterline",
        ]
    )
    payload = {
        "type": "quota.threshold",
        "severity": "critical" if threshold >= 100 else "warning",
        "tenant_id": ctx.tenant_id,
        "tenant_name": ctx.tenant_name,
        "plan": ctx.plan_id,
        "meter": ctx.meter,
        "unit": ctx.unit,
        "period": period,
        "threshold": threshold,
        "quantity": str(quantity),
        "limit": str(limit),
        "percent": str(percent),
        "hard_limit": ctx.hard_limit,
        "upgrade_to": ctx.upgrade_to,
    }
    key = f"quota-{ctx.tenant_id}-{ctx.meter}-{period}-{threshold}"
    if audience == "admin":
        key += "-admin"
    return Notification(key=key, subject=subject, text=f"{subject}\n\n{text_body}", payload=payload)


def run_failure_notification(job_name: str, run_id: str, error: str) -> Notification:
    """The admin message for a failed Dagster run."""
    short = (error or "no error message").strip()
    subject = f"[Meterline] run of {job_name} failed ({run_id[:8]})"
    lines = [
        subject,
        "",
        f"Job: {job_name}",
        f"Run id: {run_id}",
        "",
        "Error:",
        short[:4000],
        "",
        "Open the run in the Dagster UI to see its logs.",
    ]
    return Notification(
        key=f"run-failure-{run_id}",
        subject=subject,
        text="\n".join(lines),
        payload={
            "type": "run.failure",
            "severity": "critical",
            "job_name": job_name,
            "run_id": run_id,
            "error": short[:4000],
        },
    )
