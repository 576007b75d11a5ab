/* The rollout report page: outcome per host by batch, before/after evidence per host and for the fleet. */
(function () {
  const M = window.memtune;
  const el = M.el;
  const STATUS = {
    changed: ["CH", "changed"], unchanged: ["UN", "unchanged"], skipped: ["SK", "skipped"],
    rolled_back: ["RB", "rolled back"], failed: ["FL", "failed"], unreachable: ["UR", "unreachable"],
    not_reached: ["NR", "not reached"],
  };
  const KEY = ["psi_some_avg10", "psi_full_avg10", "psi_some_stall_us_per_s", "pgscan_kswapd", "pgscan_direct",
    "allocstall", "workingset_refault", "compact_stall", "oom_kill", "pswpout"];
  let data;
  try { data = M.readData(); } catch (e) { M.fail("The rollout data cannot be read: " + e.message); return; }
  const report = data && data.report;
  if (!data || data.page_version !== 1 || !report || !Array.isArray(report.hosts)) {
    M.fail("The data is not a memtune rollout report this page can show (page version 1).");
    return;
  }
  const main = M.app();
  document.body.setAttribute("data-state", "ready");

  function status(name) {
    const known = STATUS[name];
    const [code, label] = known || [String(name).slice(0, 2).toUpperCase(), String(name).replace(/_/g, " ")];
    return el("span", { class: "outcome", "data-status": name }, [
      el("span", { class: "sw " + (known ? "s-" + name : "s-other"), "aria-hidden": "true", text: code }), " " + label]);
  }
  function num(v) { return v === null || v === undefined ? "-" : String(v); }
  function change(b, a) {
    if (b === null || b === undefined || a === null || a === undefined) return el("span", { text: "-" });
    const d = Math.round((a - b) * 1000) / 1000;
    return el("span", { class: d > 0 ? "up" : d < 0 ? "down" : null, text: (d > 0 ? "▲ +" : d < 0 ? "▼ " : "") + d });
  }
  function hostName(name) {
    if (!data.audit_page) return el("span", { text: name });
    return el("a", { href: data.audit_page + "#host=" + encodeURIComponent(name), class: "audit-link", text: name });
  }

  const counts = report.counts || {};
  const countText = Object.keys(counts).sort().map(k => counts[k] + " " + (STATUS[k] ? STATUS[k][1] : k)).join(", ");
  const moved = Object.entries(report.evidence || {}).filter(([, m]) => m.most_risen && m.most_risen.change > 0)
    .sort((x, y) => (y[1].after - y[1].before) - (x[1].after - x[1].before));
  main.append(el("section", { class: "summary", id: "summary", "aria-label": "summary" }, [
    el("p", { class: "verdict", text: report.hosts.length + (report.hosts.length === 1 ? " host: " : " hosts: ") + (countText || "no outcome yet") + "." }),
    el("p", { text: "Batches (serial) " + JSON.stringify(report.serial) + ", max_fail_percentage " + report.max_fail_percentage + "." }),
    el("p", { text: "What rose most after the change: " + (moved.length ? moved.slice(0, 4).map(([k, m]) => k + " on " + m.most_risen.host + " (+" + m.most_risen.change + ")").join(", ") : "nothing") + "." }),
    (report.reboot_required || []).length ? el("p", { text: "Reboot required (not rebooted): " + report.reboot_required.join(", ") + "." }) : null,
  ]));
  if (!report.hosts.length) {
    main.append(el("p", { class: "empty", id: "empty", text: "This rollout report has no hosts." }));
    document.body.setAttribute("data-state", "empty");
    return;
  }

  const fleet = report.evidence || {};
  if (Object.keys(fleet).length) {
    main.append(el("h2", { text: "Fleet evidence (mean over the hosts with both windows)" }));
    main.append(el("div", { class: "scroll" }, [M.table("Fleet evidence", ["metric", "hosts", "before", "after", "change", "rose most on"],
      Object.entries(fleet).map(([k, m]) => [el("code", { text: k }), String(m.hosts), num(m.before), num(m.after), change(m.before, m.after),
        m.most_risen ? el("span", null, [hostName(m.most_risen.host), " (" + (m.most_risen.change > 0 ? "+" : "") + m.most_risen.change + ")"]) : "-"]), "data fleet-evidence")]));
  }

  const batches = [];
  const index = new Map();
  for (const h of report.hosts) {
    const key = Array.isArray(h.batch) && h.batch.length ? JSON.stringify(h.batch) : "none";
    if (!index.has(key)) { index.set(key, batches.length); batches.push({ key, hosts: [] }); }
    batches[index.get(key)].hosts.push(h);
  }
  batches.sort((a, b) => (a.key === "none") - (b.key === "none"));
  let number = 0;
  for (const batch of batches) {
    const title = batch.key === "none" ? "Hosts outside any batch (not reached or dropped out)" : "Batch " + (++number) + " (" + batch.hosts.length + (batch.hosts.length === 1 ? " host)" : " hosts)");
    main.append(el("h2", { text: title }));
    const rows = batch.hosts.map(function (h) {
      const ev = h.evidence || {};
      const b = ev.before ? ev.before.metrics : null, a = ev.after ? ev.after.metrics : null;
      const moved = b && a ? KEY.filter(k => b[k] !== null && a[k] !== null && (b[k] || a[k])) : [];
      const summary = b && a ? (moved.length ? moved.slice(0, 4).map(k => k + " " + b[k] + " → " + a[k]).join("; ") : "nothing moved")
        : b ? "before only" : "no evidence";
      const full = b || a ? el("details", null, [el("summary", { text: summary }),
        M.table("Evidence of " + h.host, ["metric", "before", "after", "change"],
          Object.keys((a || b)).map(k => [el("code", { text: k }), num(b && b[k]), num(a && a[k]), change(b && b[k], a && a[k])]), "data evidence")])
        : el("span", { class: "muted", text: summary });
      return [hostName(h.host), status(h.status), (h.differences || []).join(", ") || "-", h.reason || "-", full];
    });
    const table = M.table(title, ["host", "outcome", "knobs changed", "reason", "evidence (before → after)"], rows, "data batch");
    for (const [i, tr] of [...table.tBodies[0].rows].entries()) tr.setAttribute("data-host", batch.hosts[i].host);
    main.append(el("div", { class: "scroll" }, [table]));
  }
})();
