// Runs table: key autocomplete for the filter expression, a column picker that lists every
// key, child runs that expand under their parent, a Compare button that needs 2-10 ticks,
// and live rows updated in place from the page's JSON twin while runs are running (no
// reload, so nothing typed is lost). The page works without this file: every control is a
// GET form or a link. Loaded only by the Runs page; data goes in with textContent only.
"use strict";

(function () {
  const FIELDS = ["status", "user", "experiment", "name", "started"];
  const MAX_OPTIONS = 60;

  function option(list, value) {
    const opt = document.createElement("option");
    opt.value = value;
    list.appendChild(opt);
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null));
  }

  // ---- key autocomplete and the column picker ----
  let keys = [];

  function fillPicker(data) {
    const columns = document.getElementById("runs-columns");
    const choices = document.getElementById("col-choices");
    const shown = new Set(Array.from(document.querySelectorAll("#col-choices input")).map((i) => i.value));
    let more = null;
    for (const key of keys) {
      if (columns) option(columns, key);
      if (!choices || shown.has(key)) continue;
      if (more === null) {
        more = document.createElement("fieldset");
        more.className = "col-choices col-more";
        const legend = document.createElement("legend");
        legend.textContent = "more";
        more.appendChild(legend);
      }
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "cols";
      box.value = key;
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + key));
      more.appendChild(label);
    }
    if (more && choices) choices.after(more);
    const experiments = document.getElementById("runs-experiments");
    if (experiments) for (const name of data.experiments || []) option(experiments, name);
  }

  // A datalist matches the whole input, so each suggestion is the text typed so far with
  // the key being typed completed.
  function suggest() {
    const input = document.getElementById("runs-q");
    const list = document.getElementById("runs-q-keys");
    if (!input || !list) return;
    const text = input.value;
    const word = /[^\s<>=!~"']*$/.exec(text)[0];
    const before = text.slice(0, text.length - word.length);
    list.replaceChildren();
    if (/(>=|<=|!=|==|>|<|=|~)\s*$/.test(before)) return; // a value is being typed
    const lower = word.toLowerCase();
    let n = 0;
    for (const key of [...keys, ...FIELDS]) {
      if (n >= MAX_OPTIONS) break;
      if (lower && !key.toLowerCase().includes(lower)) continue;
      option(list, before + key);
      n += 1;
    }
  }

  function loadKeys() {
    if (!document.getElementById("runs-q")) return;
    getJSON("/api/runs/keys" + location.search).then((data) => {
      if (!data) return;
      keys = [
        ...data.metrics.map((k) => "metrics." + k),
        ...data.params.map((k) => "params." + k),
        ...data.tags.map((k) => "tags." + k),
      ];
      fillPicker(data);
      suggest();
    }).catch(() => {});
    document.getElementById("runs-q").addEventListener("input", suggest);
  }

  // ---- child runs ----
  function toggleChildren(link) {
    const open = link.getAttribute("aria-expanded") !== "true";
    link.setAttribute("aria-expanded", String(open));
    link.firstChild.textContent = link.firstChild.textContent.replace(open ? "▸" : "▾", open ? "▾" : "▸");
    const id = link.dataset.toggle;
    for (const row of document.querySelectorAll("#runs-table tr[data-parent]")) {
      if (row.dataset.parent === id) row.hidden = !open;
    }
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("#runs-table a.kids");
    if (!link) return;
    event.preventDefault();
    toggleChildren(link);
  });

  // ---- compare ----
  const compare = document.getElementById("compare-form");
  if (compare) {
    const note = compare.querySelector(".table-actions .muted");
    compare.addEventListener("submit", (event) => {
      const ticked = compare.querySelectorAll("input[name=ids]:checked").length;
      if (ticked >= 2 && ticked <= 10) return;
      event.preventDefault();
      if (note) {
        note.textContent = `tick 2–10 runs to compare (${ticked} ticked)`;
        note.classList.add("error");
      }
    });
  }

  // ---- live rows ----
  function cell(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "boolean") return String(value);
    if (typeof value === "number") return g4(value);
    if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(value)) {
      return value.slice(0, 19).replace("T", " ");
    }
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function g4(x) { // Python's "{:.4g}"
    if (!Number.isFinite(x)) return String(x);
    if (x === 0) return "0";
    const e = Math.floor(Math.log10(Math.abs(x)));
    if (e < -4 || e >= 4) {
      const [mantissa, exp] = x.toExponential(3).split("e");
      const n = Number(exp);
      return mantissa.replace(/\.?0+$/, "") + "e" + (n < 0 ? "-" : "+") + String(Math.abs(n)).padStart(2, "0");
    }
    return String(Number(x.toPrecision(4)));
  }

  function update(data) {
    const rows = new Map();
    for (const run of data.runs || []) {
      rows.set(run.id, run);
      for (const child of run.children || []) rows.set(child.id, child);
    }
    for (const tr of document.querySelectorAll("#runs-table tr[data-run]")) {
      const run = rows.get(tr.dataset.run);
      if (!run) continue;
      const badge = tr.querySelector('td[data-col="status"] .badge');
      if (badge && badge.textContent !== run.status) {
        badge.textContent = run.status;
        badge.className = "badge status-" + run.status;
      }
      const took = tr.querySelector('td[data-col="duration"]');
      if (took) took.textContent = ChachamlLive.duration(run.duration_seconds ?? run.elapsed_seconds);
      for (const td of tr.querySelectorAll("td[data-col]")) {
        const [kind, ...rest] = td.dataset.col.split(".");
        if (!rest.length || !["metrics", "params", "tags"].includes(kind)) continue;
        const value = (run[kind] || {})[rest.join(".")];
        const text = cell(value);
        if (td.textContent !== text) td.textContent = text;
        td.classList.toggle("num", typeof value === "number" || kind === "metrics");
      }
    }
  }

  const live = document.getElementById("runs-live");
  const seconds = Number((live && live.dataset.seconds) || 3);
  let timer = null;

  function running() {
    return document.querySelector('#runs-table td[data-col="status"] .status-running') !== null;
  }

  function schedule() {
    const on = running();
    if (live) live.hidden = !on;
    if (on && timer === null) timer = setTimeout(poll, seconds * 1000);
  }

  function poll() {
    getJSON("/api/runs" + location.search)
      .then((data) => { if (data) update(data); })
      .catch(() => {})
      .finally(() => { timer = null; schedule(); });
  }

  function start() {
    loadKeys();
    schedule();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
