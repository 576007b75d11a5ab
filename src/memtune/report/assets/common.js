"use strict";
/* Shared helpers of memtune's report pages: no network, no libraries. */
window.memtune = (function () {
  const KINDS = {
    error: { code: "ERR", label: "error (not audited)", rank: 90 },
    runtime_drift: { code: "RT", label: "runtime drift", rank: 80 },
    shortfall: { code: "SF", label: "shortfall", rank: 70 },
    boot_drift: { code: "BT", label: "boot drift", rank: 60 },
    leftover: { code: "LO", label: "leftover", rank: 50 },
    unmanaged: { code: "UM", label: "unmanaged", rank: 30 },
    unsupported: { code: "US", label: "unsupported", rank: 20 },
    ok: { code: "ok", label: "ok", rank: 0 },
    none: { code: "", label: "not planned", rank: -1 },
  };
  const UNKNOWN_RANK = 40;

  function kind(name) {
    const known = KINDS[name];
    if (known) return Object.assign({ name: name, cls: "k-" + name }, known);
    /* A kind newer than this page: its own name as label, a neutral colour. */
    const code = String(name).replace(/[^A-Za-z]/g, "").slice(0, 3).toUpperCase() || "?";
    return { name: name, code: code, label: String(name).replace(/_/g, " "), rank: UNKNOWN_RANK, cls: "k-other" };
  }

  function worst(names) {
    let best = null;
    for (const name of names) if (best === null || kind(name).rank > kind(best).rank) best = name;
    return best;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else if (key === "oninput") node.addEventListener("input", value);
      else if (key === "onchange") node.addEventListener("change", value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function swatch(name) {
    const info = kind(name);
    return el("span", { class: "sw " + info.cls, "aria-hidden": "true", text: info.code || "·" });
  }

  function value(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "object" && !Array.isArray(v)) return Object.keys(v).map(k => k + "=" + v[k]).join(", ");
    return String(v);
  }

  function kb(v) {
    if (v === null || v === undefined) return "-";
    const units = ["kB", "MiB", "GiB", "TiB"];
    let n = v, i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + " " + units[i];
  }

  function table(caption, headers, rows, cls) {
    return el("table", { class: cls || "data" }, [
      caption ? el("caption", { class: "sr", text: caption }) : null,
      el("thead", null, [el("tr", null, headers.map(h => el("th", { scope: "col", text: h })))]),
      el("tbody", null, rows.map(row => el("tr", null, row.map((cell, i) =>
        i === 0 ? el("th", { scope: "row" }, [cell]) : el("td", null, [cell]))))),
    ]);
  }

  function readData() {
    const node = document.getElementById("memtune-data");
    if (!node) throw new Error("the data element is missing");
    return JSON.parse(node.textContent);
  }

  function app() {
    const main = document.getElementById("app");
    const loading = document.getElementById("loading");
    if (loading) loading.remove();
    return main;
  }

  function fail(message) {
    app().append(el("p", { class: "problem", role: "alert", text: message }));
    document.body.setAttribute("data-state", "error");
  }

  function hashParam(name) {
    const match = new RegExp("(?:^#|&)" + name + "=([^&]*)").exec(location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  return { KINDS, kind, worst, el, swatch, value, kb, table, readData, app, fail, hashParam };
})();
