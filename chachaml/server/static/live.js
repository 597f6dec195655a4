// What the live pages (runs.js, run.js, pipelines.js) share: following the server's event
// stream, and printing a duration as the templates' `duration` filter does ("4.2s", "3m07s").
//
// ChachamlLive.follow() opens ONE EventSource on /api/events for the page (browsers allow six
// HTTP/1.1 connections per host, shared by every tab, so each tab holds at most one stream,
// and none while hidden: it is closed then and reopened after the last event it took, so a
// background tab frees its connection and misses nothing). The page starts after the event
// id it was built at (data-events-after), so nothing between page and stream is lost. When
// an event the page cares about arrives, follow() calls its refresh() (which re-reads the
// page's JSON twin), at once if it has been quiet, else once per `gapMs`, however many
// events came meanwhile. Without EventSource, when the stream is refused (an error before it
// ever opened), or after three errors in a row, it polls refresh() every `pollMs` instead
// (while the page is visible and `shouldPoll()` holds) and tries the stream again every
// half minute. ChachamlLive.status says which (mode "stream", "poll" or "off") and counts
// what happened, for the browser tests.
"use strict";

(function () {
  const MAX_ERRORS = 3; // errors in a row (the browser reconnecting in between) before polling
  const STREAM_RETRY_MS = 30000; // while polling, how often the stream is tried again

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const total = Math.floor(seconds);
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const secs = total % 60;
    const two = (n) => String(n).padStart(2, "0");
    return hours ? `${hours}h${two(minutes)}m` : `${minutes}m${two(secs)}s`;
  }

  // A cell marked data-since="ISO time" counts up each second (a running run or step), with
  // data-suffix after the duration; the live scripts set or clear the mark from the twin.
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach((node) => {
      const since = Date.parse(node.dataset.since);
      if (Number.isNaN(since)) return;
      const text = duration(Math.max(0, (now - since) / 1000)) + (node.dataset.suffix || "");
      if (node.textContent !== text) node.textContent = text;
    });
  }
  let ticking = null;

  // open: a stream is connected now; streams: how many were opened; the rest count events
  // taken (relevant: ones that asked for a refresh), refreshes, polls and stream errors.
  const status = {
    mode: "off", open: false, streams: 0, events: 0, relevant: 0, refreshes: 0, polls: 0, errors: 0,
  };

  // options: filter (the /api/events query: {type, run_id, ...}), after (the page's
  // data-events-after; "" means there is no stream), relevant(event), refresh() (a promise;
  // false when the page stops being live), pollMs, gapMs, shouldPoll(), onMode(mode).
  function follow(options) {
    const gapMs = options.gapMs || options.pollMs;
    let lastId = options.after || "";
    let source = null;
    let opened = false; // the current source has opened at least once
    let errors = 0;
    let mode = "off";
    let stopped = false;
    let busy = false;
    let again = false;
    let last = 0; // when refresh() last started
    let timer = null;
    let pollTimer = null;
    let retryTimer = null;

    function setMode(next) {
      mode = next;
      status.mode = next;
      if (options.onMode) options.onMode(next);
    }

    function visible() {
      return document.visibilityState === "visible";
    }

    async function run() {
      timer = null;
      busy = true;
      last = Date.now();
      status.refreshes += 1;
      let more = true;
      let failed = false;
      try {
        more = await options.refresh();
      } catch (err) {
        failed = true; // a dropped connection: try again shortly
      }
      busy = false;
      if (more === false) return stop();
      if (failed && mode === "stream") setTimeout(request, options.pollMs);
      if (again) {
        again = false;
        request();
      }
    }

    // refresh() soon: at once after a quiet spell, else once per gapMs; one at a time.
    function request() {
      if (stopped) return;
      if (busy) {
        again = true;
        return;
      }
      if (timer !== null) return;
      timer = setTimeout(run, Math.max(0, last + gapMs - Date.now()));
    }

    function close() {
      status.open = false;
      if (source) {
        source.close();
        source = null;
      }
    }

    function poll() {
      pollTimer = null;
      if (stopped || mode !== "poll") return;
      if (visible() && (!options.shouldPoll || options.shouldPoll())) {
        status.polls += 1;
        request();
      }
      pollTimer = setTimeout(poll, options.pollMs);
    }

    function fallBack() {
      close();
      if (stopped) return;
      if (mode !== "poll") {
        setMode("poll");
        request(); // whatever the stream may have missed
        pollTimer = setTimeout(poll, options.pollMs);
      }
      if (window.EventSource && lastId !== "" && retryTimer === null) {
        retryTimer = setTimeout(() => {
          retryTimer = null;
          if (!stopped && mode === "poll" && visible()) open();
          else if (!stopped && mode === "poll") fallBack(); // hidden: try again later
        }, STREAM_RETRY_MS);
      }
    }

    function open() {
      close();
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(options.filter || {})) {
        if (value !== undefined && value !== null && value !== "") query.set(name, value);
      }
      query.set("after", lastId);
      opened = false;
      errors = 0;
      status.streams += 1;
      const current = new EventSource("/api/events?" + query.toString());
      source = current;
      current.onopen = () => {
        if (source !== current) return;
        const wasPolling = mode === "poll";
        opened = true;
        errors = 0;
        status.open = true;
        if (pollTimer !== null) {
          clearTimeout(pollTimer);
          pollTimer = null;
        }
        setMode("stream");
        if (wasPolling) request(); // what changed since the last poll
      };
      current.onmessage = (message) => {
        if (source !== current) return;
        if (message.lastEventId) lastId = message.lastEventId;
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (err) {
          return;
        }
        status.events += 1;
        if (!options.relevant || options.relevant(event)) {
          status.relevant += 1;
          request();
        }
      };
      current.onerror = () => {
        if (source !== current) return;
        errors += 1;
        status.errors += 1;
        status.open = false; // the browser reconnects by itself (after lastEventId) unless closed
        // refused (401, 503, not a stream: the browser gives up), never opened, or failing
        // again and again while the browser reconnects: poll instead
        if (current.readyState === EventSource.CLOSED || !opened || errors >= MAX_ERRORS) fallBack();
      };
    }

    function stop() {
      stopped = true;
      close();
      clearTimeout(timer);
      clearTimeout(pollTimer);
      clearTimeout(retryTimer);
      clearInterval(ticking);
      ticking = null;
      setMode("off");
    }

    function onVisibility() {
      if (stopped) return;
      if (!visible()) {
        if (mode === "stream") close(); // free the connection; resume after lastId later
        return;
      }
      if (mode === "stream" && source === null) open(); // the events missed come first
    }

    if (ticking === null) ticking = setInterval(tick, 1000);
    if (!window.EventSource || lastId === "") {
      fallBack();
    } else {
      setMode("stream");
      if (visible()) open();
      else close(); // opened once the tab is shown
    }
    document.addEventListener("visibilitychange", onVisibility);
    return { stop, request };
  }

  window.ChachamlLive = { duration, follow, status, tick };
})();
