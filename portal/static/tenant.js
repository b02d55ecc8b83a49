"use strict";
(() => {
  const $ = (s, r = document) => r.querySelector(s);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const num = (v) => (v == null ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: 6 }));
  const money = (minor, cur) => {
    const f = new Intl.NumberFormat("en-US", { style: "currency", currency: cur || "USD" });
    return f.format(Number(minor) / 10 ** f.resolvedOptions().maximumFractionDigits);
  };
  const major = (v, cur) => new Intl.NumberFormat("en-US", { style: "currency", currency: cur || "USD" }).format(Number(v));
  const LABELS = { api_calls: "API calls", storage_gb: "Storage", bandwidth_gb: "Bandwidth", compute_seconds: "Compute", active_users: "Active users" };
  const label = (m) => LABELS[m] || String(m).replace(/_/g, " ");
  const when = (iso) => new Date(iso).toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" });
  const ADDITIVE = new Set(["sum", "count"]);
  const get = async (url) => {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((body.error && body.error.message) || "HTTP " + r.status);
    return body;
  };
  const done = (id) => $("#" + id).setAttribute("aria-busy", "false");
  const fail = (id, e) => { $("#" + id + " .body, #" + id + " .meters, #" + id + " .charts").innerHTML = `<p class="muted">Could not load: ${esc(e.message)}</p>`; done(id); };
  const pager = (id, res, load) => {
    if (res.pages <= 1) return "";
    setTimeout(() => $("#" + id + " .pager").addEventListener("click", (ev) => { const p = ev.target.dataset.page; if (p) load(Number(p)); }));
    return `<nav class="pager"><button type="button" data-page="${res.page - 1}" ${res.page <= 1 ? "disabled" : ""}>‹</button><span>page ${res.page} of ${res.pages}</span><button type="button" data-page="${res.page + 1}" ${res.page >= res.pages ? "disabled" : ""}>›</button></nav>`;
  };

  function meterHtml(m) {
    const limited = m.limit != null;
    const width = limited ? Math.min(100, m.percent || 0) : 0;
    return `<div class="meter lvl-${m.level}${limited ? "" : " unlimited"}" data-meter="${esc(m.meter)}" data-quantity="${esc(m.quantity)}" data-limit="${esc(m.limit ?? "")}" data-percent="${esc(m.percent ?? "")}" data-level="${m.level}">
<div class="row"><span class="name">${esc(label(m.meter))}</span><span class="nums">${num(m.quantity)}${limited ? " / " + num(m.limit) : ""} ${esc(m.unit)}</span></div>
<div class="bar" role="progressbar" aria-label="${esc(label(m.meter))}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${width}"><span data-width="${width}"></span></div>
<div class="row muted"><span class="pct">${limited ? num(m.percent) + " %" : "no limit"}</span><span class="rem">${limited ? num(m.remaining) + " " + esc(m.unit) + " remaining" + (m.hard_limit ? "" : " before overage") : ""}</span></div></div>`;
  }

  function costHtml(c) {
    if (!c) return '<p class="muted">No cost estimate yet: it appears after the next pipeline run.</p>';
    if (c.source === "live") {
      return `<div class="figs"><div><div class="muted">Usage so far (live)</div><div class="big" id="estimated">${major(c.usage_so_far_major, c.currency)}</div></div></div>
<table><tbody>${c.lines.map((l) => `<tr><td>${esc(label(l.meter))}</td><td class="n">${major(l.amount_major, c.currency)}</td></tr>`).join("")}</tbody></table>`;
    }
    const rows = c.lines.map((l) => `<tr data-line="${esc(l.line_key)}" data-minor="${l.amount}"><td>${esc(l.description)}</td><td class="n">${money(l.amount, c.currency)}</td></tr>`).join("");
    return `<div class="figs"><div><div class="muted">So far</div><div class="big" id="estimated" data-minor="${c.estimated_cost}">${money(c.estimated_cost, c.currency)}</div></div>
<div><div class="muted">Projected month end</div><div class="big" id="projected" data-minor="${c.projected_cost}">${money(c.projected_cost, c.currency)}</div></div></div>
<table><thead><tr><th>So far</th><th class="n">Amount</th></tr></thead><tbody>${rows || '<tr><td colspan="2" class="muted">Nothing charged yet</td></tr>'}</tbody>
<tfoot><tr><td>Projected: base fee</td><td class="n" id="proj-base" data-minor="${c.base_fee}">${money(c.base_fee, c.currency)}</td></tr><tr><td>Projected: usage at the current pace</td><td class="n" id="proj-usage" data-minor="${c.projected_usage}">${money(c.projected_usage, c.currency)}</td></tr></tfoot></table>`;
  }

  async function summary() {
    try {
      const s = await get("/v1/dashboard/summary");
      $("#who").innerHTML = `<strong>${esc(s.name)}</strong> · plan <strong id="plan">${esc(s.plan_name || s.plan || "none")}</strong> · ${esc(s.month)}`;
      $("#fresh").textContent = s.usage_loaded_until ? "Costs and trends as of " + when(s.usage_loaded_until) + " · usage bars are live" : "Usage bars are live";
      $("#quota .meters").innerHTML = s.meters.length ? s.meters.map(meterHtml).join("") : '<p class="muted">No plan and no usage this month.</p>';
      // widths through the CSSOM: the Content-Security-Policy allows no inline style attribute
      document.querySelectorAll("#quota .bar span[data-width]").forEach((bar) => { bar.style.width = bar.dataset.width + "%"; });
      $("#cost .body").innerHTML = costHtml(s.costs);
      performance.mark("first-data-paint");
      done("quota"); done("cost");
    } catch (e) { fail("quota", e); fail("cost", e); }
  }

  async function trend(days) {
    document.querySelectorAll("#trend .tabs button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.days === String(days))));
    try {
      const r = await get("/v1/dashboard/usage?per_page=20&days=" + days);
      $("#trend .charts").innerHTML = r.items.length ? r.items.map((i) => `<div class="chart" data-meter="${esc(i.meter)}" data-total="${esc(i.total)}"><div class="row"><span>${esc(label(i.meter))}</span><span class="muted">${ADDITIVE.has(i.aggregation) ? num(i.total) + " total · " : ""}peak ${num(i.peak)}/day</span></div>${i.svg}</div>`).join("") : '<p class="muted">No daily rollups yet: they appear after the next pipeline run.</p>';
    } catch (e) { fail("trend", e); }
    done("trend");
  }

  async function alerts(page = 1) {
    try {
      const r = await get("/v1/dashboard/alerts?page=" + page);
      $("#alerts .body").innerHTML = r.total ? `<div class="scroll"><table><thead><tr><th>When</th><th>Meter</th><th class="n">Threshold</th><th class="n">Usage</th><th>Sent by</th></tr></thead><tbody>${r.items.map((a) => `<tr><td>${esc(when(a.fired_at))}</td><td>${esc(label(a.meter))}</td><td class="n">${a.threshold} %</td><td class="n">${num(a.usage_percent)} %</td><td>${esc(a.channel)} <span class="pill s-${esc(a.delivery_status)}">${esc(a.delivery_status)}</span></td></tr>`).join("")}</tbody></table></div>` + pager("alerts", r, alerts) : '<p class="muted">No alerts: you have not reached 80 % of any limit.</p>';
    } catch (e) { fail("alerts", e); }
    done("alerts");
  }

  async function invoices(page = 1) {
    try {
      const r = await get("/v1/dashboard/invoices?page=" + page);
      $("#invoices .body").innerHTML = r.total ? `<div class="scroll"><table><thead><tr><th>Month</th><th class="n">Amount</th><th>Status</th><th>Stripe invoice</th></tr></thead><tbody>${r.items.map((i) => `<tr data-period="${esc(i.period)}" data-minor="${i.amount_due}"><td>${esc(i.period)}</td><td class="n">${money(i.amount_due, i.currency)}</td><td><span class="pill s-${esc(i.status)}">${esc(i.status.replace("_", " "))}</span>${i.past_due ? ' <span class="pill s-past_due">past due</span>' : ""}${i.paid_at ? ` <span class="muted">${esc(i.paid_at.slice(0, 10))}</span>` : ""}</td><td>${esc(i.stripe_invoice_id || "—")}</td></tr>`).join("")}</tbody></table></div>` + pager("invoices", r, invoices) : '<p class="muted">No invoices yet.</p>';
    } catch (e) { fail("invoices", e); }
    done("invoices");
  }

  $("#trend .tabs").addEventListener("click", (ev) => { if (ev.target.dataset.days) trend(Number(ev.target.dataset.days)); });
  Promise.all([summary(), trend(30), alerts(), invoices()]).then(() => { document.body.dataset.loaded = "true"; });
})();
