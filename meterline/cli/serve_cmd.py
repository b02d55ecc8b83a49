"""`meterline serve`, `ui`, `demo` and `bench`: running the product."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from meterline.cli.context import console, runtime


def demo(
    tenants: int = typer.Option(20, help="How many demo tenants."),
    scale: float = typer.Option(1.0, help="Multiply the generated usage volume."),
) -> None:
    """Run the whole product end to end on generated data, then print where to look."""
    from meterline.cli.demo import run_demo

    run_demo(console, tenants=tenants, scale=scale)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json), with header/body timeouts and a
    concurrency limit from the METERLINE_HTTP_* settings."""
    import uvicorn

    from alerts.notifier import Notifier
    from ingestion.ratelimit import EventBudget
    from meterline.cli.access_log import serve_log_config
    from meterline.core.secrets import secret_key
    from meterline.core.telemetry.logs import configure_logging
    from meterline.core.telemetry.tracing import configure_tracing
    from meterline.http_limits import uvicorn_config
    from meterline.server import catalog_cost_estimator, create_app

    rt = runtime()
    settings = rt.settings
    configure_logging(settings.log_format)
    configure_tracing(settings.otlp_endpoint)
    application = create_app(
        rt.engine, rt.redis, prefix=rt.prefix, admin_key=settings.admin_key,
        secret_key=secret_key(settings), cost_estimator=catalog_cost_estimator(rt.engine),
        trusted_proxies=settings.trusted_proxies, key_cache_ttl=settings.key_cache_ttl,
        unknown_key_limit=settings.unknown_key_limit, body_timeout=settings.http_body_timeout,
        event_budget=EventBudget(settings.event_rate, settings.event_burst),
        metrics_enabled=settings.metrics_enabled, log_format=settings.log_format,
        metrics_multiprocess_dir=settings.prometheus_multiproc_dir,
        stripe_webhook_secret=settings.stripe_webhook_secret,
        notifier=Notifier.configure(
            home=settings.home, smtp_url=settings.smtp_url,
            webhook_url=settings.alert_webhook_url, webhook_secret=settings.alert_webhook_secret,
            admin_email=settings.admin_email, sender=settings.alert_sender,
        ),
    )  # fmt: skip
    base = f"http://{host}:{port}"
    console.print(f"Meterline API on {base}  (docs: {base}/docs)")
    if settings.metrics_enabled:
        console.print(f"  metrics           {base}/metrics  (Prometheus; keep it private)")
    console.print(f"  tenant dashboard  {base}/dashboard  (sign in with a tenant API key)")
    console.print(
        f"  admin overview    {base}/admin  (sign in with METERLINE_ADMIN_KEY)"
        if rt.settings.admin_key
        else "  admin overview    set METERLINE_ADMIN_KEY and restart to enable /admin"
    )
    config = uvicorn_config(
        application, host=host, port=port, settings=settings, log_level="info",
        log_config=serve_log_config(),
    )  # fmt: skip
    uvicorn.Server(config).run()


def ui(port: int = typer.Option(3000, help="Dagster webserver port.")) -> None:
    """Start the Dagster UI (`dagster dev`) on the same services the CLI uses."""
    rt = runtime()
    root = Path(__file__).resolve().parents[2]
    console.print(
        f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={rt.settings.resolved_dagster_home})"
    )
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(
        str(dagster),
        [
            str(dagster),
            "dev",
            "-w",
            str(root / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
    )


def bench(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    events: int = typer.Option(200_000, help="Events for the ingest benchmarks."),
    transform_events: int = typer.Option(
        10_000_000, help="Events for the dbt benchmark (0 skips it)."
    ),
) -> None:
    """Measure throughput and latency against the real services and print the numbers."""
    from meterline.cli.bench import bench_command

    bench_command(
        runtime(), console, as_json=as_json, events=events, transform_events=transform_events
    )
