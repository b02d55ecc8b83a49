"use strict";
(() => {
  const $ = (s, r = document) => r.querySelector(s);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const num = (v) => (v == null ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }));
  const money = (minor, cur) => {
    if (minor == null) return "—";
    const f = new Intl.NumberFormat("en-US", { style: "currency", currency: cur || "USD" });
    return f.format(Number(minor) / 10 ** f.resolvedOptions().maximumFractionDigits);
  };
  const form = $("#filters");
  let state = { page: 1 };
  const params = new URLSearchParams(location.search);
  for (const k of ["plan", "status", "quota", "page"]) if (params.get(k)) state[k] = params.get(k);

  const row = (t) => `<tr data-tenant="${esc(t.tenant_id)}" data-percent="${esc(t.max_percent ?? "")}" data-plan="${esc(t.plan ?? "")}" data-status="${esc(t.status)}" class="lvl-${t.level}">
<td><a href="${esc(t.dashboard_url)}">${esc(t.tenant_id)}</a><div class="muted">${esc(t.name)}</div></td><td>${esc(t.plan || "—")}</td>
<td><span class="pill s-${esc(t.status)}">${esc(t.status)}</span></td>
<td class="n"><span class="pill s-${esc(t.quota_status)}">${t.max_percent == null ? "no limit" : num(t.max_percent) + " %"}</span><div class="muted">${esc((t.top_meter || "").replace(/_/g, " "))}</div></td>
<td class="n" data-col="estimated" data-minor="${t.estimated_cost ?? ""}">${money(t.estimated_cost, t.currency)}</td><td class="n">${money(t.projected_cost, t.currency)}</td>
<td class="n" data-col="mrr" data-minor="${t.mrr ?? ""}">${money(t.mrr, t.currency)}</td><td class="n" data-col="allocated" data-minor="${t.allocated_cost ?? ""}">${money(t.allocated_cost, t.currency)}</td>
<td class="n${t.gross_margin < 0 ? " neg" : ""}" data-col="margin" data-minor="${t.gross_margin ?? ""}">${money(t.gross_margin, t.currency)}${t.margin_pct == null ? "" : `<div class="muted">${num(t.margin_pct)} %</div>`}</td></tr>`;

  async function load() {
    const q = new URLSearchParams(Object.entries(state).filter(([k, v]) => v && !(k === "page" && Number(v) === 1)));
    history.replaceState(null, "", "/admin" + (q.toString() ? "?" + q : ""));
    $("#overview").setAttribute("aria-busy", "true");
    try {
      const r = await fetch("/v1/admin/overview?" + q, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const d = await r.json();
      if (!r.ok) throw new Error((d.error && d.error.message) || "HTTP " + r.status);
      const sel = form.plan;
      if (sel.options.length === 1) for (const p of d.plans) sel.add(new Option(p, p));
      for (const k of ["plan", "status", "quota"]) form[k].value = state[k] || "";
      if (d.finance_month) { $("#alloc-h").textContent = "Allocated cost " + d.finance_month; $("#margin-h").textContent = "Margin " + d.finance_month; }
      $("#fresh").textContent = `${d.total} tenants · ${d.month}` + (d.marts ? "" : " · run the pipeline for cost, MRR and margin");
      $("#tenants tbody").innerHTML = d.items.map(row).join("") || '<tr><td colspan="9" class="muted">No tenant matches these filters.</td></tr>';
      $(".pager").innerHTML = d.pages > 1 ? `<button type="button" data-page="${d.page - 1}" ${d.page <= 1 ? "disabled" : ""}>‹</button><span>page ${d.page} of ${d.pages}</span><button type="button" data-page="${d.page + 1}" ${d.page >= d.pages ? "disabled" : ""}>›</button>` : "";
      if (!performance.getEntriesByName("first-data-paint").length) performance.mark("first-data-paint");
    } catch (e) {
      $("#tenants tbody").innerHTML = `<tr><td colspan="9">Could not load: ${esc(e.message)}</td></tr>`;
    }
    $("#overview").setAttribute("aria-busy", "false");
    document.body.dataset.loaded = "true";
  }
  form.addEventListener("change", () => { state = { page: 1, plan: form.plan.value, status: form.status.value, quota: form.quota.value }; document.body.dataset.loaded = "false"; load(); });
  $(".pager").addEventListener("click", (ev) => { if (ev.target.dataset.page) { state.page = Number(ev.target.dataset.page); document.body.dataset.loaded = "false"; load(); } });
  load();
})();
