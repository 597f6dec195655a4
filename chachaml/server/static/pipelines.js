// The Pipelines pages, live: on each pipeline event (ChachamlLive.follow: /api/events, polling
// only if the stream fails) updated in place from the page's JSON twin (/api/pipelines...,
// every page has one) instead of reloaded, so scroll, focus and anything selected stay put.
// The list updates each row's status, step counts and duration, and adds pipelines started
// since; a pipeline's page updates its status, duration and error, each step's row (status,
// attempts, times, duration, run, error) and each DAG node (state, label, link) until the
// pipeline ends. Data goes in with textContent and setAttribute only.
"use strict";

(function () {
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    if (node && node.getAttribute(name) !== value) node.setAttribute(name, value);
  }

  // The status badge inside `holder`: `status` picks its colour, `text` what it says.
  function setBadge(holder, status, text) {
    if (!holder) return;
    let badge = holder.querySelector(".badge");
    if (!badge) {
      badge = el("span");
      holder.replaceChildren(badge);
    }
    setAttr(badge, "class", "badge status-" + status);
    setText(badge, text === undefined ? status : text);
  }

  // A time cell as the server's `when` filter writes it; shell.js shows it in the local zone.
  function setTime(cell, iso) {
    if (!cell) return;
    if (!iso) {
      if (cell.textContent) cell.replaceChildren();
      return;
    }
    const utc = new Date(iso).toISOString().slice(0, 19) + "Z";
    const shown = cell.querySelector("time");
    if (shown && shown.getAttribute("datetime") === utc) return;
    cell.replaceChildren(el("time", { datetime: utc }, utc.slice(0, 19).replace("T", " ") + " UTC"));
  }

  function runLink(cell, runId) {
    if (!cell) return;
    const href = runId ? "/runs/" + runId : null;
    const link = cell.querySelector("a");
    if (link && link.getAttribute("href") === href) return;
    if (!href) cell.replaceChildren();
    else cell.replaceChildren(el("a", { href }, runId.slice(0, 8)));
  }

  function byData(selector, name) {
    const found = new Map();
    document.querySelectorAll(selector).forEach((node) => found.set(node.dataset[name], node));
    return found;
  }

  // ---- the list ------------------------------------------------------------------------

  function stepCounts(cell, counts) {
    const wanted = Object.entries(counts || {}).map(([s, n]) => `${n} ${s}`).join(" ");
    const shown = Array.from(cell.querySelectorAll(".badge")).map((b) => b.textContent).join(" ");
    if (wanted === shown) return;
    cell.replaceChildren();
    for (const [s, n] of Object.entries(counts || {})) cell.append(el("span", { class: "badge status-" + s }, `${n} ${s}`), " ");
  }

  function listRow(p) {
    const row = el("tr", { "data-pipeline": p.id });
    const name = el("td");
    name.append(el("a", { href: "/pipelines/" + encodeURIComponent(p.id) }, p.name));
    row.append(name, el("td", { "data-col": "status" }), el("td", { "data-col": "steps" }), el("td"),
      el("td", { class: "num", "data-col": "duration" }), el("td", {}, p.created_by), el("td"));
    setTime(row.children[3], p.started_at);
    runLink(row.children[6], p.run_id);
    return row;
  }

  function updateList(data) {
    const body = document.querySelector("#pipelines-table tbody");
    if (!body) return;
    const rows = byData("#pipelines-table tr[data-pipeline]", "pipeline");
    let previous = null;
    for (const p of data.pipelines || []) {
      let row = rows.get(p.id);
      if (!row) { // started since the page was served: in its place, newest first
        row = listRow(p);
        if (previous) previous.after(row);
        else body.prepend(row);
        const empty = body.querySelector("td.empty");
        if (empty) empty.closest("tr").remove();
      }
      setBadge(row.querySelector('td[data-col="status"]'), p.status);
      stepCounts(row.querySelector('td[data-col="steps"]'), p.step_counts);
      setText(row.querySelector('td[data-col="duration"]'), ChachamlLive.duration(p.duration_seconds));
      previous = row;
    }
  }

  // ---- one pipeline --------------------------------------------------------------------

  function attempts(cell, step) {
    const runs = step.attempt_runs || [];
    if (!runs.length) {
      if (!cell.querySelector("a")) setText(cell, step.attempts ? String(step.attempts) : "");
      return;
    }
    if (!cell.querySelector("a")) cell.replaceChildren();
    const links = cell.querySelectorAll("a");
    runs.forEach((a, i) => { // each link kept (and a focused one stays focused), new ones added
      const n = a.attempt || i + 1;
      let link = links[i];
      if (!link) {
        link = el("a");
        cell.append(link);
      }
      setAttr(link, "href", "/runs/" + a.run_id);
      setAttr(link, "title", `attempt ${n}: ${a.status}`);
      setAttr(link, "class", "badge status-" + a.status);
      setText(link, "#" + n);
    });
  }

  function fact(id, text) {
    const dd = document.getElementById(id);
    if (!dd) return;
    setText(dd, text);
    dd.hidden = !text;
    if (dd.previousElementSibling) dd.previousElementSibling.hidden = !text;
  }

  function updateSteps(steps) {
    const rows = byData("#pipeline-steps tr[data-step]", "step");
    for (const s of steps) {
      const row = rows.get(s.name);
      if (!row) continue;
      const cell = (name) => row.querySelector(`td[data-col="${name}"]`);
      setBadge(cell("status"), s.status_class, s.shown_status);
      attempts(cell("attempts"), s);
      setTime(cell("started_at"), s.started_at);
      setTime(cell("ended_at"), s.ended_at);
      const soFar = s.status === "running" && s.duration_seconds !== null ? " so far" : "";
      const took = cell("duration");
      if (took && soFar && s.started_at) { // counts up each second (ChachamlLive.tick)
        took.dataset.since = s.started_at;
        took.dataset.suffix = soFar;
      } else if (took) {
        delete took.dataset.since;
      }
      setText(took, ChachamlLive.duration(s.duration_seconds) + soFar);
      runLink(cell("run"), s.run_id);
      setText(cell("error"), s.error || "");
    }
  }

  function updateGraph(graph) {
    const nodes = byData("svg.pipeline-graph g.node[data-step]", "step");
    for (const n of graph.nodes || []) {
      const node = nodes.get(n.name);
      if (!node) continue;
      setAttr(node, "class", "node status-" + n.status_class);
      setText(node.querySelector("title"), `${n.name} · ${n.status}`);
      setText(node.querySelector(".step-status"), n.status);
      const link = node.closest("a");
      setAttr(link, "href", n.href);
      setAttr(link, "aria-label", `step ${n.name}: ${n.status}`);
    }
  }

  function updatePipeline(data) {
    const p = data.pipeline;
    setBadge(document.getElementById("pipeline-status"), p.status);
    fact("pipeline-duration", ChachamlLive.duration(p.duration_seconds));
    fact("pipeline-error", p.error || "");
    updateSteps(p.steps || []);
    updateGraph(data.graph || {});
  }

  // ---- following --------------------------------------------------------------------

  // Both pages follow the pipeline events (ChachamlLive.follow); each one about what the page
  // shows re-reads the twin, at most once per refresh interval. A pipeline's page stops once
  // the pipeline ended; the list keeps following (new pipelines appear). Without the stream
  // both poll the twin while something runs.
  function start() {
    const live = document.getElementById("pipelines-live");
    if (!live) return;
    const seconds = Number(live.dataset.seconds) || 2;
    const url = "/api" + window.location.pathname + window.location.search;
    const one = document.getElementById("pipeline-steps") !== null;
    const id = live.dataset.pipeline;
    const polling = live.textContent;
    let mode = "off";
    let runningNow = Boolean(live.dataset.seconds);
    const note = () => {
      if (mode === "stream") {
        live.textContent = one ? "Live: updates as the pipeline's steps change." : "Live: updates as pipelines start, step and end.";
        live.hidden = false;
      } else {
        live.textContent = polling;
        live.hidden = mode === "off" || !runningNow;
      }
    };
    ChachamlLive.follow({
      filter: { type: "pipeline.*" },
      after: live.dataset.eventsAfter || "",
      relevant: (event) => !one || (event.data && event.data.pipeline_id === id),
      refresh: async () => {
        const answer = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" });
        if (!answer.ok) throw new Error("the pipelines JSON answered " + answer.status); // tried again
        const data = await answer.json();
        (one ? updatePipeline : updateList)(data);
        runningNow = Boolean(data.refresh_seconds);
        note();
        return !one || runningNow; // a pipeline that ended changes no more
      },
      pollMs: seconds * 1000,
      shouldPoll: () => runningNow,
      onMode: (next) => {
        mode = next;
        note();
      },
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
