// The run page: the metric filter box, and, while the run is running, live updates without a
// reload. On each event of the run (ChachamlLive.follow: /api/events?run_id=ID, polling only
// if the stream fails) it reads the page's JSON twin (/api/runs/ID: status, elapsed time,
// latest metrics, why a killed run was killed) and asks each drawn chart for the points after
// its last step (ChachaCharts.refresh); new metrics get a chart, one-point metrics become
// charts when a second point arrives. It stops once the run has ended. Set as text only.
"use strict";

(function () {
  const POLL_MS = 2000;
  const duration = ChachamlLive.duration;

  function cell(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return Number.isFinite(value) ? String(Number(value.toPrecision(4))) : String(value);
    return String(value);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the filter box ----------------------------------------------------------------------

  function applyFilter() {
    const box = document.getElementById("metric-filter");
    const root = document.getElementById("metric-charts");
    if (!box || !root) return;
    const text = box.value.trim().toLowerCase();
    let shown = 0;
    root.querySelectorAll("section.metric-group").forEach((group) => {
      let visible = 0;
      group.querySelectorAll("figure[data-key]").forEach((fig) => {
        const match = !text || fig.dataset.key.toLowerCase().includes(text);
        fig.hidden = !match;
        if (match) visible += 1;
      });
      group.hidden = visible === 0;
      shown += visible;
    });
    const none = document.getElementById("metric-none");
    if (none && root.querySelector("figure[data-key]")) {
      none.textContent = "No metric matches the filter.";
      none.hidden = shown > 0;
    }
  }

  // --- building a metric's figure (as the template's metric_chart macro does) --------------

  let counter = 0;
  function nextId() {
    do counter += 1; while (document.getElementById("chart-" + counter));
    return "chart-" + counter;
  }

  function chartDiv(m, id, started) {
    const div = el("div", {
      class: "chart", id, "data-series": m.series_url, "data-key": m.key,
      role: "img", "aria-label": `Line chart of ${m.key}, latest ${cell(m.last)} at step ${m.step}`,
    });
    if (started) div.dataset.started = started;
    return div;
  }

  function valueP(m, id) {
    const p = el("p", { class: "metric-value", "data-chart-id": id, "data-series": m.series_url });
    p.append(el("span", { class: "value" }, m.last === null ? "NaN" : cell(m.last)), " ",
      el("span", { class: "muted" }, `at step ${m.step} (one point)`));
    return p;
  }

  function figure(m, started) {
    const id = nextId();
    const fig = el("figure", {
      class: m.count === 1 ? "chart-box metric single" : "chart-box metric", "data-key": m.key, "data-count": String(m.count),
    });
    fig.append(el("figcaption", { class: "chart-title" }, m.key));
    fig.append(m.count === 1 ? valueP(m, id) : chartDiv(m, id, started));
    const controls = el("div", { class: "chart-controls" });
    const log = el("label");
    log.append(el("input", { type: "checkbox", class: "log-toggle", "data-chart": id }), " log scale");
    const reset = el("button", { type: "button", class: "chart-reset", "data-chart": id }, "reset zoom");
    reset.hidden = true;
    const add = el("input", {
      class: "chart-add", "data-chart": id, list: "metric-keys",
      placeholder: "add metric…", "aria-label": "add a metric to this chart",
    });
    controls.append(log, " ", reset, " ", add, " ", el("span", { class: "chart-note muted" }), " ",
      el("a", { href: m.csv_url }, "full data (CSV)"));
    fig.append(controls);
    return fig;
  }

  function groupFor(root, key) {
    const prefix = key.includes("/") ? key.split("/")[0] : "";
    for (const section of root.querySelectorAll("section.metric-group")) {
      if (section.dataset.prefix === prefix) return section.querySelector(".charts");
    }
    const section = el("section", { class: "metric-group", "data-prefix": prefix });
    section.append(el("h3", {}, prefix ? prefix + "/" : "metrics"), el("div", { class: "charts" }));
    root.append(section);
    return section.querySelector(".charts");
  }

  // --- live updates ------------------------------------------------------------------------

  function updateSummary(metrics) {
    const body = document.getElementById("metric-summary");
    if (!body) return;
    const none = body.querySelector("tr.none");
    if (none && metrics.length) none.remove();
    for (const m of metrics) {
      let row = body.querySelector(`tr[data-key="${CSS.escape(m.key)}"]`);
      if (!row) {
        row = el("tr", { "data-key": m.key });
        row.append(el("th", {}, m.key));
        for (const f of ["last", "step", "min", "max", "count"]) row.append(el("td", { class: "num", "data-f": f }));
        body.append(row);
      }
      for (const f of ["last", "step", "min", "max", "count"]) {
        const td = row.querySelector(`td[data-f="${f}"]`);
        const text = f === "step" || f === "count" ? String(m[f]) : cell(m[f]);
        if (td.textContent !== text) td.textContent = text;
      }
    }
  }

  function updateCharts(metrics, started) {
    const root = document.getElementById("metric-charts");
    const keys = document.getElementById("metric-keys");
    if (!root) return;
    for (const m of metrics) {
      let fig = root.querySelector(`figure[data-key="${CSS.escape(m.key)}"]`);
      if (!fig) {
        fig = figure(m, started);
        groupFor(root, m.key).append(fig);
        if (keys) keys.append(el("option", { value: m.key, "data-url": m.series_url }));
        ChachaCharts.observe(fig);
        continue;
      }
      const single = fig.querySelector(".metric-value");
      if (single && m.count > 1) {
        single.replaceWith(chartDiv(m, single.dataset.chartId, started));
        fig.classList.remove("single");
        fig.dataset.count = String(m.count);
        ChachaCharts.observe(fig);
        continue;
      }
      const chart = fig.querySelector(".chart");
      const state = chart && ChachaCharts.state(chart.id);
      if (state && state.lastStep !== null && m.step > state.lastStep) ChachaCharts.refresh(chart.id);
      else if (state && String(m.count) !== fig.dataset.count) ChachaCharts.refresh(chart.id);
      fig.dataset.count = String(m.count);
    }
    applyFilter();
  }

  function updateStatus(data) {
    const status = data.run.status;
    const badge = document.querySelector("#run-status .badge");
    if (badge && badge.textContent !== status) {
      badge.textContent = status;
      badge.className = "badge status-" + status;
    }
    const killed = document.getElementById("run-killed");
    if (killed && data.killed_reason) {
      killed.textContent = "Killed: " + data.killed_reason;
      killed.hidden = false;
    }
  }

  function startLive(live) {
    const started = Number(live.dataset.started);
    const elapsed = document.getElementById("run-elapsed");
    let running = true;
    const tick = setInterval(() => {
      if (running && elapsed) elapsed.textContent = duration(Date.now() / 1000 - started);
    }, 1000);
    async function refresh() {
      const answer = await fetch("/api/runs/" + encodeURIComponent(live.dataset.run), { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) throw new Error("the run's JSON answered " + answer.status); // tried again
      const data = await answer.json();
      updateStatus(data);
      updateSummary(data.metrics);
      updateCharts(data.metrics, started);
      if (data.live) return true;
      running = false;
      clearInterval(tick);
      if (elapsed) {
        elapsed.textContent = duration(data.elapsed_seconds);
        const term = elapsed.previousElementSibling;
        if (term && term.tagName === "DT") term.textContent = "duration";
      }
      live.dataset.live = "0";
      live.dataset.status = data.run.status;
      return false; // ended: the stream (or polling) stops
    }
    ChachamlLive.follow({
      filter: { type: "run.*", run_id: live.dataset.run },
      after: live.dataset.eventsAfter || "",
      refresh,
      pollMs: POLL_MS,
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("metric-filter");
    if (box) box.addEventListener("input", applyFilter);
    applyFilter();
    const live = document.getElementById("run-live");
    if (live && live.dataset.live === "1") startLive(live);
  });
})();
