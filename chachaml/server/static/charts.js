// chachaml charts: interactive Vega-Lite line charts (tooltips, x zoom and pan, smoothing,
// several series, NaN/inf markers), drawn lazily as they scroll into view.
//
// Entry points (window.ChachaCharts), for every page that draws metric curves:
//   <div class="chart" data-spec='{vega-lite line spec}'>   a static spec (rows step/value[/run])
//   <div class="chart" data-series="/api/runs/ID/metrics/KEY" data-key="KEY" data-started="EPOCH">
//       a run's metric, fetched when visible; zooming in fetches the finer points of the range
//       (data-series may also be a JSON list of {key, url, label}: several series in one chart)
//   ChachaCharts.observe(root)          draw the charts under root when they become visible
//   ChachaCharts.addSeries(id, key, url)  overlay another metric on chart `id` (kept in the URL as
//       overlay.<chart's metric>=<added metric>, repeated, so a reload or a shared link shows it)
//   ChachaCharts.refresh(id)            fetch the points logged since the last one (live pages)
//   ChachaCharts.setX(mode)             "step" | "relative" | "wall" (kept in localStorage + URL)
//   ChachaCharts.setSmoothing(alpha)    EMA weight 0..0.99 (kept in localStorage)
//   ChachaCharts.views                  Map of chart id -> Vega view (tests read scale domains)
//   ChachaCharts.state(id)              {points, lastStep, zoomed, downsampled} of one chart
// Page controls are wired by data attributes: select[data-chart-x], input[data-chart-smooth],
// input.log-toggle[data-chart], button.chart-reset[data-chart], input.chart-add[data-chart].
// Vega runs through vega-interpreter (no eval); tooltips are vega-tooltip elements styled from
// app.css (disableDefaultStyle: it would inject a <style>, which the CSP forbids).
"use strict";

(function () {
  const X_SLOT = "chachaml.charts.x";
  const SMOOTH_SLOT = "chachaml.charts.smoothing";
  const X_MODES = ["step", "relative", "wall"];
  const OVERLAY = "overlay."; // ?overlay.loss=val_loss: val_loss drawn in the chart of loss
  const charts = new Map(); // id -> chart state
  const views = new Map(); // id -> vega View
  const settings = { x: "step", smoothing: 0 };

  function readSettings() {
    const fromUrl = new URLSearchParams(window.location.search).get("x");
    const x = fromUrl || localStorage.getItem(X_SLOT);
    if (X_MODES.includes(x)) settings.x = x;
    const a = Number(localStorage.getItem(SMOOTH_SLOT));
    if (a >= 0 && a < 1) settings.smoothing = a;
  }

  // --- data --------------------------------------------------------------------------------

  function seriesRows(series, label) {
    const rows = [];
    for (let i = 0; i < series.steps.length; i++) {
      rows.push({ series: label, step: series.steps[i], value: series.values[i], time: series.times[i] });
    }
    const bad = (series.nonfinite || []).map((p) => ({ series: label, step: p.step, label: p.value, time: p.time }));
    return { rows, bad };
  }

  function ema(rows, alpha) {
    // TensorBoard's debiased exponential moving average, per series.
    const state = new Map();
    for (const r of rows) {
      const s = state.get(r.series) || { last: 0, n: 0 };
      s.last = s.last * alpha + (1 - alpha) * r.value;
      s.n += 1;
      r.smooth = alpha > 0 ? s.last / (1 - Math.pow(alpha, s.n)) : r.value;
      state.set(r.series, s);
    }
  }

  function withX(chart, rows) {
    const t0 = chart.started || chart.rows.reduce((lo, r) => (r.time != null && r.time < lo ? r.time : lo), Infinity);
    for (const r of rows) {
      if (r.time != null) r.date = r.time * 1000;
      if (settings.x === "wall" && r.time != null) r.x = r.time * 1000;
      else if (settings.x === "relative" && r.time != null) r.x = r.time - t0;
      else r.x = r.step;
    }
    return rows;
  }

  function mode(chart) {
    return chart.hasTime ? settings.x : "step";
  }

  // --- spec --------------------------------------------------------------------------------

  function buildSpec(chart) {
    const m = mode(chart);
    const multi = new Set(chart.rows.map((r) => r.series)).size > 1 || chart.series.length > 1;
    const xType = m === "wall" ? "temporal" : "quantitative";
    const xTitle = { step: "step", relative: "time since start (s)", wall: "time" }[m];
    const x = { field: "x", type: xType, title: xTitle };
    if (m === "step") x.axis = { tickMinStep: 1 };
    const yScale = chart.logScale ? { type: "log" } : { zero: false };
    const metrics = chart.series.length > 1; // several metrics: the legend names them
    const y = { field: "value", type: "quantitative", title: metrics ? null : chart.title, scale: yScale };
    const color = {
      field: "series",
      type: "nominal",
      legend: multi ? { orient: "bottom", title: null, labelLimit: 0, direction: "vertical" } : null,
    };
    const finite = chart.logScale ? [{ filter: "datum.value > 0" }] : [];
    const smoothing = settings.smoothing;
    const tooltip = [
      { field: "series", type: "nominal", title: "metric" },
      { field: "step", type: "quantitative" },
      { field: "value", type: "quantitative", format: ".6g" },
    ];
    if (smoothing > 0) tooltip.push({ field: "smooth", type: "quantitative", format: ".6g", title: "smoothed" });
    if (chart.hasTime) tooltip.push({ field: "date", type: "temporal", title: "time", format: "%Y-%m-%d %H:%M:%S" });
    const layers = [
      {
        transform: finite,
        mark: { type: "line", interpolate: "linear", opacity: smoothing > 0 ? 0.25 : 1 },
        encoding: { x, y, color },
      },
    ];
    if (smoothing > 0) {
      layers.push({
        transform: finite,
        mark: { type: "line", interpolate: "linear" },
        encoding: { x, y: { ...y, field: "smooth" }, color },
      });
    }
    layers.push(
      {
        transform: finite,
        mark: { type: "point", filled: true, size: 40 },
        params: [
          { name: "hover", select: { type: "point", encodings: ["x"], nearest: true, on: "pointermove", clear: "pointerout" } },
          { name: "zoom", select: { type: "interval", encodings: ["x"] }, bind: "scales" },
        ],
        encoding: {
          x,
          y: smoothing > 0 ? { ...y, field: "smooth" } : y,
          color,
          opacity: { condition: { param: "hover", empty: false, value: 1 }, value: 0 },
          tooltip,
        },
      },
      {
        transform: [...finite, { filter: { param: "hover", empty: false } }],
        mark: { type: "rule", color: "#8c959f" },
        encoding: { x },
      },
    );
    const spec = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      width: "container",
      height: 220,
      datasets: { points: withX(chart, chart.rows), bad: withX(chart, chart.bad) },
      data: { name: "points" },
      layer: layers,
      config: { aria: false },
    };
    if (chart.bad.length) {
      layers.push({
        data: { name: "bad" },
        mark: { type: "rule", color: "#cf222e", strokeDash: [4, 3], strokeWidth: 2 },
        encoding: {
          x,
          tooltip: [
            { field: "series", type: "nominal", title: "metric" },
            { field: "step", type: "quantitative" },
            { field: "label", type: "nominal", title: "value" },
          ],
        },
      });
    }
    return spec;
  }

  // --- drawing -----------------------------------------------------------------------------

  function label(chart) {
    const bad = chart.bad.length ? `, ${chart.bad.length} NaN or infinite points marked` : "";
    if (!chart.series.length) {
      const runs = [...new Set(chart.rows.map((r) => r.series))].filter((n) => n !== chart.title);
      return `Line chart of ${chart.title}` + (runs.length ? ` for ${runs.join(", ")}` : "");
    }
    const last = chart.rows.filter((r) => r.series === chart.series[0].label).pop();
    const names = chart.series.map((s) => s.label).join(", ");
    const latest = last ? `, latest ${Number(last.value).toPrecision(4)} at step ${last.step}` : "";
    return `Line chart of ${names}${latest}${bad}`;
  }

  function embed(chart) {
    const el = chart.el;
    const previous = views.get(el.id);
    if (previous) previous.finalize();
    ema(chart.rows, settings.smoothing);
    chart.badLayer = chart.bad.length > 0; // the "bad" data set exists only with its layer
    return vegaEmbed(el, buildSpec(chart), {
      renderer: "canvas",
      ast: true,
      expr: vegaInterpreter.expressionInterpreter,
      defaultStyle: false,
      forceActionsMenu: true,
      tooltip: { theme: "custom", disableDefaultStyle: true },
      actions: { export: true, source: false, compiled: false, editor: false },
      downloadFileName: el.id,
    }).then((result) => {
      views.set(el.id, result.view);
      chart.fullDomain = result.view.scale("x").domain().slice();
      const wrapper = el.querySelector(".chart-wrapper") || el;
      el.removeAttribute("role");
      el.removeAttribute("aria-label");
      wrapper.setAttribute("role", "img");
      wrapper.setAttribute("aria-label", label(chart));
      const summary = el.querySelector("summary");
      if (summary) summary.setAttribute("aria-label", `chart actions for ${chart.title}`);
      result.view.addSignalListener("zoom", () => zoomed(chart));
      el.dataset.rendered = "1";
    }).catch((err) => {
      el.textContent = "Chart failed: " + err.message;
      el.dataset.rendered = "error";
    });
  }

  function note(chart) {
    const fig = chart.el.closest("figure");
    const slot = fig && fig.querySelector(".chart-note");
    if (!slot) return;
    const s = chart.series[0];
    const parts = [];
    if (s && s.downsampled) parts.push(`showing ${s.shown} of ${s.total} points${chart.zoomed ? " in view" : ""}`);
    if (chart.bad.length) parts.push(`${chart.bad.length} NaN/inf marked`);
    slot.textContent = parts.join(" · ");
  }

  // Zooming: once the x domain settles, fetch the finer points of the visible step range.
  function zoomed(chart) {
    clearTimeout(chart.zoomTimer);
    chart.zoomTimer = setTimeout(() => refine(chart), 250);
  }

  function stepRange(chart, domain) {
    const [lo, hi] = domain.map(Number);
    if (mode(chart) === "step") return [Math.floor(lo), Math.ceil(hi)];
    const inView = chart.rows.filter((r) => r.x >= lo && r.x <= hi).map((r) => r.step);
    if (!inView.length) return null;
    return [Math.min(...inView), Math.max(...inView)];
  }

  async function refine(chart) {
    const view = views.get(chart.el.id);
    if (!view) return;
    const domain = view.scale("x").domain().map(Number);
    const full = chart.fullDomain.map(Number);
    chart.zoomed = domain[0] > full[0] + 1e-9 || domain[1] < full[1] - 1e-9;
    const reset = document.querySelector(`button.chart-reset[data-chart="${chart.el.id}"]`);
    if (reset) reset.hidden = !chart.zoomed;
    const coarse = chart.series.some((s) => s.downsampled);
    if (!chart.zoomed || !coarse) return note(chart);
    const range = stepRange(chart, domain);
    if (!range) return;
    const generation = chart.generation;
    const fetched = await Promise.all(chart.series.map((s) => fetchSeries(s.url, `min_step=${range[0]}&max_step=${range[1]}`)));
    if (!fetched.every(Boolean) || chart.generation !== generation) return;  // reset meanwhile
    chart.series.forEach((s, i) => {
      const fine = seriesRows(fetched[i], s.label);
      const outside = chart.rows.filter((r) => r.series === s.label && (r.step < range[0] || r.step > range[1]));
      s.finer = fine.rows.concat(outside).sort((a, b) => a.step - b.step);
      s.shown = fetched[i].shown;
    });
    chart.rows = chart.series.flatMap((s) => s.finer);
    ema(chart.rows, settings.smoothing);
    withX(chart, chart.rows);
    view.change("points", vega.changeset().remove(() => true).insert(chart.rows)).run();
    note(chart);
  }

  async function fetchSeries(url, query) {
    const answer = await fetch(url + (url.includes("?") ? "&" : "?") + query, { credentials: "same-origin" });
    if (!answer.ok) return null;
    return answer.json();
  }

  async function loadSeries(chart) {
    const loaded = await Promise.all(chart.series.map((s) => fetchSeries(s.url, "points=1000")));
    chart.rows = [];
    chart.bad = [];
    chart.series.forEach((s, i) => {
      const data = loaded[i];
      if (!data) return;
      const { rows, bad } = seriesRows(data, s.label);
      Object.assign(s, { downsampled: data.downsampled, shown: data.shown, total: data.total, lastStep: data.last_step });
      chart.rows.push(...rows);
      chart.bad.push(...bad);
    });
    chart.hasTime = chart.rows.some((r) => r.time != null);
    chart.zoomed = false;
    note(chart);
    return embed(chart);
  }

  function staticChart(el) {
    const spec = JSON.parse(el.dataset.spec);
    const enc = spec.encoding || {};
    const colorField = enc.color && enc.color.field;
    const title = (enc.y && enc.y.title) || el.dataset.key || "value";
    const rows = ((spec.data && spec.data.values) || []).map((r) => ({
      series: colorField ? String(r[colorField]) : title,
      step: r.step,
      value: r.value,
      time: r.time == null ? null : r.time,
    }));
    return { el, title, rows, bad: [], series: [], hasTime: false, logScale: false, started: null };
  }

  function seriesChart(el) {
    // data-series: one URL (the metric data-key), or a JSON list of {key, url, label}
    // (e.g. one metric of several runs, labelled by run).
    const key = el.dataset.key;
    const raw = el.dataset.series;
    const listed = raw.startsWith("[");
    const series = listed
      ? JSON.parse(raw).map((s) => ({ key: s.key || key, url: s.url, label: s.label || s.key || key }))
      : [{ key, url: raw, label: key }];
    if (!listed) series.push(...overlaysOf(el));
    return {
      el, title: key || series[0].key, rows: [], bad: [], logScale: false, hasTime: false,
      started: Number(el.dataset.started) || null, series, overlays: !listed,
    };
  }

  // The metrics the URL overlays on a run's chart, each found in the chart's "add metric" list
  // (a key the run never logged is left out).
  function overlaysOf(el) {
    const add = document.querySelector(`input.chart-add[data-chart="${CSS.escape(el.id)}"]`);
    const list = add && document.getElementById(add.getAttribute("list"));
    if (!list || !el.dataset.key) return [];
    const keys = new URLSearchParams(window.location.search).getAll(OVERLAY + el.dataset.key);
    const found = [];
    for (const key of new Set(keys)) {
      const option = Array.from(list.options).find((o) => o.value === key);
      if (key !== el.dataset.key && option) found.push({ key, url: option.dataset.url, label: key });
    }
    return found;
  }

  // This chart's overlays into the URL (replacing the state, as the x axis mode is), leaving
  // the other charts' (drawn or not yet) as they are.
  function keepOverlays(chart) {
    if (!chart.overlays || !chart.el.dataset.key) return;
    const url = new URL(window.location.href);
    const name = OVERLAY + chart.el.dataset.key;
    url.searchParams.delete(name);
    for (const s of chart.series.slice(1)) url.searchParams.append(name, s.key);
    window.history.replaceState(null, "", url);
  }

  function draw(el) {
    if (charts.has(el.id)) return;
    const chart = el.dataset.series ? seriesChart(el) : staticChart(el);
    charts.set(el.id, chart);
    if (chart.series.length > 1 && chart.overlays) chips(chart);
    if (el.dataset.series) return loadSeries(chart);
    return embed(chart);
  }

  // The metrics added to a chart, each with a button that takes it off again.
  function chips(chart) {
    const fig = chart.el.closest("figure");
    const controls = fig && fig.querySelector(".chart-controls");
    if (!controls) return;
    let box = controls.querySelector(".chart-series");
    if (!box) {
      box = document.createElement("span");
      box.className = "chart-series";
      controls.prepend(box);
    }
    box.replaceChildren();
    for (const s of chart.series.slice(1)) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "chart-series-remove";
      button.dataset.chart = chart.el.id;
      button.dataset.key = s.key;
      button.setAttribute("aria-label", `remove ${s.key} from this chart`);
      button.textContent = "× " + s.key;
      box.append(button);
    }
  }

  function redraw(chart) {
    clearTimeout(chart.zoomTimer);  // a zoom still settling must not refine the redrawn chart
    chart.generation = (chart.generation || 0) + 1;
    chips(chart);
    ema(chart.rows, settings.smoothing);
    chart.zoomed = false;
    const reset = document.querySelector(`button.chart-reset[data-chart="${chart.el.id}"]`);
    if (reset) reset.hidden = true;
    return chart.series.length ? loadSeries(chart) : embed(chart);
  }

  // --- public ------------------------------------------------------------------------------

  let observer = null;

  function observe(root) {
    const els = (root || document).querySelectorAll(".chart[data-spec], .chart[data-series]");
    if (!("IntersectionObserver" in window)) {
      els.forEach(draw);
      return;
    }
    if (!observer) {
      observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          draw(entry.target);
        }
      }, { rootMargin: "300px 0px" });
    }
    els.forEach((el) => observer.observe(el));
  }

  async function refresh(id) {
    const chart = charts.get(id);
    const view = views.get(id);
    if (!chart || !view || !chart.series.length) return false;
    let added = false;
    for (const s of chart.series) {
      const data = await fetchSeries(s.url, `after_step=${s.lastStep == null ? -1 : s.lastStep}`);
      if (!data || !data.steps.length && !(data.nonfinite || []).length) continue;
      const { rows, bad } = seriesRows(data, s.label);
      chart.rows.push(...rows);
      chart.bad.push(...bad);
      s.lastStep = data.last_step;
      s.total = data.total;
      added = true;
    }
    if (!added) return false;
    if (chart.bad.length && !chart.badLayer) return embed(chart).then(() => true);
    ema(chart.rows, settings.smoothing);
    withX(chart, chart.rows);
    view.change("points", vega.changeset().remove(() => true).insert(chart.rows));
    if (chart.badLayer) view.change("bad", vega.changeset().remove(() => true).insert(withX(chart, chart.bad)));
    await view.runAsync();
    if (!chart.zoomed) chart.fullDomain = view.scale("x").domain().slice();
    const wrapper = chart.el.querySelector(".chart-wrapper");
    if (wrapper) wrapper.setAttribute("aria-label", label(chart));
    return true;
  }

  function addSeries(id, key, url) {
    const chart = charts.get(id);
    if (!chart || !chart.series.length || chart.series.some((s) => s.key === key)) return null;
    chart.series.push({ key, url, label: key });
    keepOverlays(chart);
    return redraw(chart);
  }

  function removeSeries(id, key) {
    const chart = charts.get(id);
    if (!chart || chart.series.length < 2) return null;
    chart.series = chart.series.filter((s) => s.key !== key);
    keepOverlays(chart);
    return redraw(chart);
  }

  function setX(m) {
    if (!X_MODES.includes(m)) return;
    settings.x = m;
    localStorage.setItem(X_SLOT, m);
    const url = new URL(window.location.href);
    url.searchParams.set("x", m);
    window.history.replaceState(null, "", url);
    charts.forEach((chart) => { if (views.has(chart.el.id)) { chart.zoomed = false; embed(chart); } });
  }

  function setSmoothing(alpha) {
    const a = Math.min(0.99, Math.max(0, Number(alpha) || 0));
    settings.smoothing = a;
    localStorage.setItem(SMOOTH_SLOT, String(a));
    charts.forEach((chart) => { if (views.has(chart.el.id)) embed(chart); });
  }

  function state(id) {
    const chart = charts.get(id);
    if (!chart) return null;
    const s = chart.series[0];
    return {
      points: chart.rows.length,
      bad: chart.bad.length,
      lastStep: s ? s.lastStep : null,
      zoomed: !!chart.zoomed,
      downsampled: !!(s && s.downsampled),
      series: chart.series.map((x) => x.key),
    };
  }

  function wireControls() {
    const xSelect = document.querySelector("select[data-chart-x]");
    if (xSelect) {
      xSelect.value = settings.x;
      xSelect.addEventListener("change", () => setX(xSelect.value));
    }
    const smooth = document.querySelector("input[data-chart-smooth]");
    if (smooth) {
      const out = document.getElementById(smooth.dataset.chartSmooth);
      smooth.value = String(settings.smoothing);
      if (out) out.textContent = settings.smoothing.toFixed(2);
      let timer = null;
      smooth.addEventListener("input", () => {
        if (out) out.textContent = Number(smooth.value).toFixed(2);
        clearTimeout(timer);
        timer = setTimeout(() => setSmoothing(smooth.value), 120);
      });
    }
    document.addEventListener("change", (event) => {
      const box = event.target;
      if (box.matches && box.matches("input.log-toggle[data-chart]")) {
        const chart = charts.get(box.dataset.chart);
        if (!chart) return;
        chart.logScale = box.checked;
        chart.zoomed = false;
        embed(chart);
      }
      if (box.matches && box.matches("input.chart-add[data-chart]")) {
        const option = document.querySelector(`#${box.getAttribute("list")} option[value="${CSS.escape(box.value)}"]`);
        if (option) {
          addSeries(box.dataset.chart, box.value, option.dataset.url);
          box.value = "";
        }
      }
    });
    document.addEventListener("click", (event) => {
      const remove = event.target.closest && event.target.closest("button.chart-series-remove");
      if (remove) removeSeries(remove.dataset.chart, remove.dataset.key);
      const button = event.target.closest && event.target.closest("button.chart-reset[data-chart]");
      if (!button) return;
      const chart = charts.get(button.dataset.chart);
      if (chart) redraw(chart);
    });
  }

  window.ChachaCharts = {
    observe, draw, refresh, addSeries, removeSeries, setX, setSmoothing, views, state, settings, ema, buildSpec,
  };

  document.addEventListener("DOMContentLoaded", () => {
    readSettings();
    wireControls();
    observe(document);
  });
})();
