/* The fleet report page: summary, heat map (paged, sortable, filterable), host detail. */
(function () {
  const M = window.memtune;
  const el = M.el;
  const PAGE = 100;
  let data;
  try { data = M.readData(); } catch (e) { M.fail("The report data cannot be read: " + e.message); return; }
  if (!data || data.page_version !== 1 || !Array.isArray(data.hosts) || !Array.isArray(data.strings)) {
    M.fail("The report data is not a memtune fleet report this page can show (page version 1).");
    return;
  }
  const S = data.strings, P = data.provenances || [];
  const str = i => (i === null || i === undefined ? null : S[i]);
  const knobHosts = new Map();

  const hosts = data.hosts.map(function (entry) {
    const [name, groups, rows, memory] = entry;
    const cells = new Map();
    for (const row of rows) {
      const knob = str(row[0]);
      const kinds = row[7].map(f => str(f[0]));
      const here = kinds.length ? M.worst(kinds) : "ok";
      cells.set(knob, cells.has(knob) ? M.worst([cells.get(knob), here]) : here);
      if (!knobHosts.has(knob)) knobHosts.set(knob, 0);
    }
    let failing = 0;
    for (const [knob, k] of cells) if (k !== "ok") { failing++; knobHosts.set(knob, knobHosts.get(knob) + 1); }
    const names = groups.map(str);
    return { name, groups: names, group: names.length ? names[0] : "(no group)", rows, memory, cells, failing,
      kinds: new Set(cells.values()), error: null };
  });
  const knobs = [...knobHosts.keys()].sort();
  for (const error of data.errors || []) {
    hosts.push({ name: error.host, groups: [], group: "(not audited)", rows: [], memory: null,
      cells: new Map(knobs.map(k => [k, "error"])), failing: knobs.length, kinds: new Set(["error"]),
      error: error.message });
  }
  const byName = new Map(hosts.map(h => [h.name, h]));
  const state = { sort: "group", dir: 1, kind: "", group: "", text: "", page: 0, selected: null };
  const main = M.app();
  document.body.setAttribute("data-state", "ready");

  /* The summary: what a person reads first. */
  const drifted = {};
  for (const h of hosts) for (const k of h.kinds) if (k !== "ok") drifted[k] = (drifted[k] || 0) + 1;
  const top = [...knobHosts.entries()].filter(e => e[1] > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
  const kindsText = Object.keys(drifted).sort((a, b) => M.kind(b).rank - M.kind(a).rank)
    .map(k => drifted[k] + " with " + M.kind(k).label).join(", ");
  main.append(el("section", { class: "summary", "aria-label": "summary", id: "summary" }, [
    el("p", { class: "verdict", text: data.summary_line }),
    el("p", { text: "Hosts drifted by kind: " + (kindsText || "none") + "." }),
    el("p", { text: "Top drifting knobs: " + (top.length ? top.map(e => e[0] + " (" + e[1] + (e[1] === 1 ? " host)" : " hosts)")).join(", ") : "none") + "." }),
  ]));
  if (!hosts.length) {
    main.append(el("p", { class: "empty", id: "empty", text: "This report has no hosts: nothing was audited." }));
    document.body.setAttribute("data-state", "empty");
    return;
  }

  /* Controls. */
  const present = [...new Set(hosts.flatMap(h => [...h.cells.values()]))].sort((a, b) => M.kind(b).rank - M.kind(a).rank);
  const groups = [...new Set(hosts.flatMap(h => h.groups.length ? h.groups : [h.group]))].sort();
  const kindSelect = el("select", { id: "kind-filter", onchange: e => { state.kind = e.target.value; state.page = 0; draw(); } },
    [el("option", { value: "", text: "all kinds" }), ...present.map(k => el("option", { value: k, text: M.kind(k).label }))]);
  const groupSelect = el("select", { id: "group-filter", onchange: e => { state.group = e.target.value; state.page = 0; draw(); } },
    [el("option", { value: "", text: "all groups" }), ...groups.map(g => el("option", { value: g, text: g }))]);
  const search = el("input", { id: "host-filter", type: "search", placeholder: "host name contains", oninput: e => { state.text = e.target.value.toLowerCase(); state.page = 0; draw(); } });
  main.append(el("div", { class: "controls", role: "search" }, [
    el("label", null, ["Host", search]), el("label", null, ["Finding kind", kindSelect]), el("label", null, ["Group", groupSelect]),
  ]));
  const cellCounts = {};
  for (const h of hosts) for (const k of h.cells.values()) cellCounts[k] = (cellCounts[k] || 0) + 1;
  main.append(el("ul", { class: "legend", "aria-label": "legend" }, present.map(k =>
    el("li", null, [M.swatch(k), el("span", { text: M.kind(k).label + " (" + cellCounts[k] + (cellCounts[k] === 1 ? " cell)" : " cells)") })]))
    .concat([el("li", null, [M.swatch("none"), el("span", { text: "blank: not planned on that host" })])])));

  const status = el("span", { id: "shown", "aria-live": "polite" });
  const prev = el("button", { type: "button", id: "prev", onclick: () => { state.page--; draw(); } }, ["← previous"]);
  const next = el("button", { type: "button", id: "next", onclick: () => { state.page++; draw(); } }, ["next →"]);
  main.append(el("div", { class: "pager" }, [prev, next, status]));
  const heat = el("div", { class: "scroll" });
  main.append(heat);
  const detail = el("section", { class: "detail", id: "detail", "aria-label": "host detail", hidden: true });
  main.append(detail);

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function severity(h, knob) { return M.kind(h.cells.get(knob) || "none").rank; }
  function compare(a, b) {
    let d = 0;
    if (state.sort === "host") d = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    else if (state.sort === "failing") d = a.failing - b.failing;
    else if (state.sort === "group") d = a.group < b.group ? -1 : a.group > b.group ? 1 : 0;
    else d = severity(a, state.sort) - severity(b, state.sort);
    if (d === 0 && state.sort !== "host") d = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    return d * state.dir;
  }
  function visible() {
    return hosts.filter(h => (!state.kind || h.kinds.has(state.kind)) &&
      (!state.group || h.groups.includes(state.group) || h.group === state.group) &&
      (!state.text || h.name.toLowerCase().includes(state.text))).sort(compare);
  }
  function sortButton(key, label) {
    return el("button", { type: "button", "data-sort": key, onclick: () => {
      state.dir = state.sort === key ? -state.dir : (key === "host" || key === "group" ? 1 : -1);
      state.sort = key; state.page = 0; draw();
    } }, [label]);
  }
  function header() {
    const sorted = key => (state.sort === key ? (state.dir > 0 ? "ascending" : "descending") : null);
    return el("thead", null, [el("tr", null, [
      el("th", { scope: "col", class: "col", "aria-sort": sorted("host") }, [sortButton("host", "host")]),
      el("th", { scope: "col", class: "col", "aria-sort": sorted("group") }, [sortButton("group", "group")]),
      el("th", { scope: "col", class: "col", "aria-sort": sorted("failing") }, [sortButton("failing", "failing")]),
      ...knobs.map(k => el("th", { scope: "col", class: "knob", "aria-sort": sorted(k), title: k }, [sortButton(k, k)])),
    ])]);
  }
  function row(h) {
    const cells = knobs.map(function (k) {
      const name = h.cells.get(k) || "none";
      const info = M.kind(name);
      const dim = state.kind && name !== state.kind;
      return el("td", { class: "cell " + info.cls + (dim ? " other" : ""), "data-knob": k, "data-kind": name, title: k + ": " + info.label },
        [el("span", { "aria-hidden": "true", text: info.code }), el("span", { class: "sr", text: info.label })]);
    });
    return el("tr", { "data-host": h.name, class: state.selected === h.name ? "selected" : null }, [
      el("th", { scope: "row" }, [el("button", { type: "button", class: "host", onclick: () => show(h.name, true) }, [h.name])]),
      el("td", { class: "group", text: h.groups.join(", ") || h.group }),
      el("td", { class: "count", text: String(h.failing) }),
      ...cells,
    ]);
  }
  function draw() {
    const list = visible();
    const pages = Math.max(1, Math.ceil(list.length / PAGE));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const slice = list.slice(state.page * PAGE, (state.page + 1) * PAGE);
    const body = el("tbody");
    let last = null;
    const sizes = new Map();
    for (const h of list) sizes.set(h.group, (sizes.get(h.group) || 0) + 1);
    for (const h of slice) {
      if (state.sort === "group" && h.group !== last) {
        const size = sizes.get(h.group);
        body.append(el("tr", { class: "grouprow" }, [el("th", { scope: "rowgroup", colspan: String(knobs.length + 3), text: "group " + h.group + " (" + plural(size, "host") + ")" })]));
        last = h.group;
      }
      body.append(row(h));
    }
    heat.replaceChildren(el("table", { class: "heat", id: "heatmap" }, [
      el("caption", { class: "sr", text: "Findings per host and knob" }), header(), body]));
    status.textContent = list.length ? "hosts " + (state.page * PAGE + 1) + "–" + (state.page * PAGE + slice.length) + " of " + list.length + (list.length < hosts.length ? " (filtered from " + hosts.length + ")" : "") : "no host matches";
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
  }

  function provenanceText(index) {
    if (index === null || index === undefined) return "-";
    const [file, line, rule, layer, source] = P[index];
    return str(file) + (line ? ":" + line : "") + " rule " + str(rule) + " (" + str(layer) + ")" + (source !== null && source !== undefined ? " — " + str(source) : "");
  }
  function memoryCards(m) {
    if (!m) return el("p", { class: "muted", text: "No memory picture in this report (written by an older memtune)." });
    const psi = p => (p ? "avg10 " + p.avg10 + "%, avg60 " + p.avg60 + "%, total " + p.total + " µs" : "-");
    const card = (title, pairs) => el("div", { class: "card" }, [el("h3", { text: title }), el("dl", null, pairs.flatMap(([t, d]) => [el("dt", { text: t }), el("dd", { text: d })]))]);
    const sizes = [...new Set(m.nodes.flatMap(n => Object.keys(n.hugepages)))].sort((a, b) => a - b);
    return el("div", null, [
      el("div", { class: "cards" }, [
        card("RAM", [["total", M.kb(m.mem_total_kb)], ["available", M.kb(m.mem_available_kb)], ["swap total / used", M.kb(m.swap_total_kb) + " / " + M.kb(m.swap_used_kb)]]),
        card("Transparent huge pages", [["enabled", M.value(m.thp_enabled)], ["defrag", M.value(m.thp_defrag)]]),
        card("Memory pressure (PSI)", [["some", psi(m.psi_some)], ["full", psi(m.psi_full)]]),
        card("Huge page pools", m.pools.length ? m.pools.map(p => [p.size_kb + " kB pages", "nr " + M.value(p.nr) + ", free " + M.value(p.free)]) : [["pools", "none"]]),
      ]),
      el("h3", { text: "NUMA nodes" }),
      M.table("NUMA nodes of " + "host", ["node", "total", "free", ...sizes.map(s => s + " kB pages")],
        m.nodes.map(n => ["node " + n.node, M.kb(n.mem_total_kb), M.kb(n.mem_free_kb), ...sizes.map(s => M.value(n.hugepages[s]))])),
    ]);
  }
  function show(name, scroll) {
    const h = byName.get(name);
    if (!h) { detail.hidden = false; detail.replaceChildren(el("p", { class: "problem", role: "alert", text: "No host " + name + " in this report." })); return; }
    state.selected = name;
    if (M.hashParam("host") !== name) history.replaceState(null, "", "#host=" + encodeURIComponent(name));
    const rows = h.rows.map(function (r) {
      const findings = r[7];
      const kinds = findings.map(f => str(f[0]));
      const k = kinds.length ? M.worst(kinds) : "ok";
      const label = el("span", null, [M.swatch(k), " ", M.kind(k).label]);
      const boot = M.value(r[4]) + (r[5] !== null ? " (" + str(r[5]) + ")" : "");
      return [el("code", { text: str(r[0]) }), r[1] === null ? "host" : "node " + r[1], label, M.value(r[2]), M.value(r[3]), boot,
        el("span", { class: "prov", text: provenanceText(r[6]) }), findings.map(f => str(f[1])).join("; ") || "-"];
    });
    detail.hidden = false;
    detail.replaceChildren(...[
      el("h2", { id: "detail-title", text: "Host " + h.name }),
      el("p", { class: "muted", text: "groups: " + (h.groups.join(", ") || "none") }),
      h.error ? el("p", { class: "problem", role: "alert", text: "Not audited: " + h.error }) : null,
      ...(h.error ? [] : [
      el("h3", { text: "Knobs" }),
      rows.length ? el("div", { class: "scroll" }, [M.table("Knobs of " + h.name, ["knob", "node", "finding", "desired", "runtime", "boot (source)", "provenance (file:line rule)", "why"], rows)]) : el("p", { class: "muted", text: "No checks." }),
      el("h3", { text: "Memory" }),
      memoryCards(h.memory)])].filter(Boolean));
    draw();
    if (scroll) detail.scrollIntoView();
  }

  if ((data.moved || []).length) {
    const moved = data.moved.slice(0, 1000);
    main.insertBefore(el("section", { id: "moved", "aria-label": "moved since the baseline" }, [
      el("h2", { text: "Moved since the baseline " + data.baseline + " (" + data.moved.length + ")" }),
      el("div", { class: "scroll" }, [M.table("Values moved since the baseline", ["host", "knob", "field", "baseline", "now"],
        moved.map(m => [m.host, el("code", { text: m.knob }), m.field, M.value(m.before), M.value(m.after)]))]),
      data.moved.length > moved.length ? el("p", { class: "muted", text: "… and " + (data.moved.length - moved.length) + " more (the JSON report has them)." }) : null,
    ].filter(Boolean)), detail);
  }
  draw();
  if (performance.mark) performance.mark("memtune-drawn");
  const wanted = M.hashParam("host");
  if (wanted) show(wanted, true);
  window.addEventListener("hashchange", () => { const h = M.hashParam("host"); if (h && h !== state.selected) show(h, true); });
})();
