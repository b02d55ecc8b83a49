"""What tenants and admins see: the tenant usage page, the admin overview, signed links.

- :func:`portal.mount.mount_portal` adds the pages, their JSON endpoints, the admin tenant list
  and the static files to the HTTP app (composed in :mod:`meterline.server`).
- :mod:`portal.signing` mints and checks signed, expiring links and session cookies
  (``mint_dashboard_link``, ``mint_admin_link``, ``resolve_secret``).
- The figures come from :mod:`portal.tenant_summary`, :mod:`portal.tenant_history`,
  :mod:`portal.admin_overview` and :mod:`portal.admin_tenants`.

See docs/dashboard.md.
"""
