"""Self-service usage dashboard (tenant page) and admin overview, served by ``meterline serve``.

``mount_dashboard(app, engine, redis, prefix=..., admin_key=...)`` adds the pages and their
JSON endpoints to the API app; ``mint_dashboard_link(tenant, secret=...)`` makes a signed,
expiring link to a tenant's page and ``mint_admin_link(secret=...)`` one to the admin page.
See docs/dashboard.md.
"""

from ingestion.dashboard.routes import mount_dashboard
from ingestion.dashboard.signing import mint_admin_link, mint_dashboard_link, resolve_secret

__all__ = ["mint_admin_link", "mint_dashboard_link", "mount_dashboard", "resolve_secret"]
