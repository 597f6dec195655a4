// Runs table: key autocomplete for the filter expression, a column picker that lists every
// key, child runs that expand under their parent, a Compare button that needs 2-10 ticks,
// and live rows: on each run event (ChachamlLive.follow) rows update in place from the
// page's JSON twin and runs started since are added (no reload, so nothing typed is lost). The page works without this file: every control is a
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

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A run started since the page was served, as the template's run_cells macro draws it (its
  // metric, param and tag cells are filled by update()).
  function newRow(run, columns) {
    const row = el("tr", { "data-run": run.id });
    const label = run.name || run.id.slice(0, 8);
    const pick = el("td", { class: "pick" });
    pick.append(el("input", { type: "checkbox", name: "ids", value: run.id, "aria-label": "select " + label }));
    const name = el("td", { class: "name" });
    name.append(el("a", { href: "/runs/" + encodeURIComponent(run.id) }, label));
    const experiment = el("td");
    experiment.append(el("a", { href: "/experiments/" + encodeURIComponent(run.experiment) }, run.experiment));
    const status = el("td", { "data-col": "status" });
    status.append(el("span", { class: "badge status-" + run.status }, run.status));
    const started = el("td");
    const utc = new Date(run.started_at).toISOString().slice(0, 19) + "Z";
    started.append(el("time", { datetime: utc }, utc.slice(0, 19).replace("T", " ") + " UTC"));
    row.append(pick, name, experiment, status, el("td", {}, run.created_by), started,
      el("td", { class: "num", "data-col": "duration" }));
    for (const key of columns) row.append(el("td", { "data-col": key }));
    return row;
  }

  // The last row of a run's family (its child rows follow it when nested).
  function familyEnd(row) {
    let last = row;
    while (last.nextElementSibling && last.nextElementSibling.dataset.parent === row.dataset.run) {
      last = last.nextElementSibling;
    }
    return last;
  }

  function addNew(data) {
    const holder = document.getElementById("runs-table");
    const body = holder && holder.querySelector("tbody");
    if (!body) return;
    let columns = [];
    try {
      columns = JSON.parse(holder.dataset.columns || "[]");
    } catch (err) {
      return;
    }
    // a row added above what a scrolled reader looks at must not push it down the screen
    // (browsers without scroll anchoring would): the first row in view stays where it was
    const anchor = window.scrollY > 0
      ? Array.from(body.rows).find((r) => r.getBoundingClientRect().bottom > 0) : null;
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    let previous = null;
    for (const run of data.runs || []) {
      let row = body.querySelector(`tr[data-run="${CSS.escape(run.id)}"]`);
      if (!row) { // in its place among the rows the twin lists (newest first by default)
        row = newRow(run, columns);
        if (previous) familyEnd(previous).after(row);
        else body.prepend(row);
        const empty = body.querySelector("td.empty");
        if (empty) empty.closest("tr").remove();
      }
      if (!row.dataset.parent) previous = row;
    }
    if (anchor && anchor.isConnected) {
      const moved = anchor.getBoundingClientRect().top - before;
      if (Math.abs(moved) >= 1) window.scrollBy(0, moved);
    }
  }

  function update(data) {
    addNew(data);
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
      if (took) {
        if (run.status === "running" && run.duration_seconds == null) took.dataset.since = run.started_at;
        else delete took.dataset.since; // ended: its duration stays put
        took.textContent = ChachamlLive.duration(run.duration_seconds ?? run.elapsed_seconds);
      }
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

  function running() {
    return document.querySelector('#runs-table td[data-col="status"] .status-running') !== null;
  }

  // Rows follow run events (a run started, logged, tagged or ended): each relevant one
  // re-reads the twin, at most once per live interval. Without the stream, the twin is
  // polled while a shown run runs (new runs then appear on reload).
  function follow() {
    const live = document.getElementById("runs-live");
    if (!live || !document.getElementById("runs-table")) return;
    const seconds = Number(live.dataset.seconds) || 3;
    const polling = live.textContent;
    let mode = "off";
    const note = () => {
      if (mode === "stream") {
        live.textContent = "Live: rows update as runs start, log and end.";
        live.hidden = false;
      } else {
        live.textContent = polling;
        live.hidden = mode === "off" || !running();
      }
    };
    ChachamlLive.follow({
      filter: { type: "run.started,run.ended,run.killed,run.metrics,run.tagged" },
      after: live.dataset.eventsAfter || "",
      relevant: (event) => event.type === "run.started" || Boolean(
        event.runid && document.querySelector(`#runs-table tr[data-run="${CSS.escape(event.runid)}"]`)),
      refresh: async () => {
        const answer = await fetch("/api/runs" + location.search, { headers: { Accept: "application/json" }, cache: "no-store" });
        if (!answer.ok) throw new Error("the runs JSON answered " + answer.status); // tried again
        update(await answer.json());
        note();
        return true;
      },
      pollMs: seconds * 1000,
      shouldPoll: running,
      onMode: (next) => {
        mode = next;
        note();
      },
    });
  }

  function start() {
    loadKeys();
    follow();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
