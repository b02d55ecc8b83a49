"""HTML shells of the two pages (no data inside: the scripts fetch the JSON endpoints) and
the small error page shown instead of any data when access is refused."""

from __future__ import annotations

from html import escape

HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1">'
    '<meta name="referrer" content="no-referrer">'
    '<title>{title}</title><link rel="icon" href="data:,">'
    '<link rel="stylesheet" href="{css}">{script}</head>'
)


def _head(title: str, css: str, js: str | None = None) -> str:
    script = f'<script defer src="{js}"></script>' if js else ""
    return HEAD.format(title=escape(title), css=css, script=script)


def tenant_page(css: str, js: str) -> str:
    return (
        _head("Usage · Meterline", css, js)
        + """<body class="tenant"><header><div><h1>Usage</h1>
<p id="who" class="muted">Loading…</p></div><p id="fresh" class="muted"></p></header><main>
<section id="quota" class="card wide" aria-busy="true"><h2>This month</h2>
<div class="meters"><p class="muted">Loading usage…</p></div>
<p class="legend muted">Bars turn yellow at 80 %, orange at 90 %, red at 95 % and dark red at the limit.</p></section>
<section id="cost" class="card" aria-busy="true"><h2>Cost this month</h2><div class="body"></div></section>
<section id="trend" class="card" aria-busy="true"><h2>Daily usage</h2>
<div class="tabs" role="group" aria-label="Period"><button type="button" data-days="30" aria-pressed="true">30 days</button><button type="button" data-days="90" aria-pressed="false">90 days</button></div>
<div class="charts"></div></section>
<section id="alerts" class="card" aria-busy="true"><h2>Alerts received</h2><div class="body"></div></section>
<section id="invoices" class="card" aria-busy="true"><h2>Invoices</h2><div class="body"></div></section>
</main></body></html>"""
    )


def admin_page(css: str, js: str) -> str:
    return (
        _head("Tenants · Meterline admin", css, js)
        + """<body class="admin"><header><div><h1>Tenants</h1>
<p id="who" class="muted">Highest share of any plan limit first</p></div><p id="fresh" class="muted"></p></header><main>
<section class="card wide" aria-busy="true" id="overview">
<form id="filters" class="filters"><label>Plan <select name="plan"><option value="">all</option></select></label>
<label>Status <select name="status"><option value="">all</option><option>active</option><option>canceled</option></select></label>
<label>Quota <select name="quota"><option value="">all</option><option>ok</option><option>warning</option><option>exceeded</option></select></label></form>
<div class="scroll"><table id="tenants"><thead><tr><th>Tenant</th><th>Plan</th><th>Status</th><th class="n">Top limit</th><th class="n">Est. cost</th><th class="n">Projected</th><th class="n">MRR</th><th class="n" id="alloc-h">Allocated cost</th><th class="n" id="margin-h">Margin</th></tr></thead><tbody></tbody></table></div>
<nav class="pager" aria-label="Pages"></nav></section>
</main></body></html>"""
    )


def error_page(css: str, status: int, title: str, message: str) -> str:
    return (
        _head(f"{status} {title} · Meterline", css)
        + f'<body class="error"><main><section class="card wide"><h1>{escape(title)}</h1>'
        f"<p>{escape(message)}</p></section></main></body></html>"
    )


def sign_in_page(css: str, *, action: str, label: str, message: str) -> str:
    """The form that turns a key typed by a person into a session: ``POST`` to ``action``
    (never a key in a URL). ``message`` says why the form is shown; nothing given is echoed."""
    return (
        _head("Sign in · Meterline", css)
        + '<body class="error"><main><section class="card wide"><h1>Sign in</h1>'
        f"<p>{escape(message)}</p>"
        f'<form method="post" action="{escape(action)}" class="sign-in">'
        f'<label>{escape(label)} <input type="password" name="key" required '
        'autocomplete="current-password" autofocus></label> '
        '<button type="submit">Sign in</button></form>'
        "</section></main></body></html>"
    )
