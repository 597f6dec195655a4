// The cross-run figures of the Compare and Experiment pages (parallel coordinates, a
// param-vs-metric scatter, a metric over run start time): server-built Vega-Lite specs in
// <div class="chart figure-chart" data-vega='...'>, drawn as they are. Metric curves are
// charts.js's (.chart[data-spec]); these are not line charts over steps, so they stay apart.
// Vega runs through vega-interpreter (no eval); tooltips are vega-tooltip elements styled
// from app.css (its default style would be an inline <style>, which the CSP forbids). A page
// that did not load the vendored Vega libraries gets them loaded here, when it has a figure.
(() => {
  "use strict";

  function drawFigure(el) {
    const label = el.getAttribute("aria-label");
    return vegaEmbed(el, JSON.parse(el.dataset.vega), {
      renderer: "canvas",
      ast: true,
      expr: vegaInterpreter.expressionInterpreter,
      defaultStyle: false,
      forceActionsMenu: true,
      tooltip: { theme: "custom", disableDefaultStyle: true },
      actions: { export: true, source: false, compiled: false, editor: false },
      downloadFileName: el.id,
    }).then(() => {
      const summary = el.querySelector("summary");
      if (summary) summary.setAttribute("aria-label", "chart actions for " + (label || el.id));
      el.dataset.rendered = "1";
    }).catch((err) => {
      el.textContent = "Chart failed: " + err.message;
      el.dataset.rendered = "error";
    });
  }

  // The vendored Vega libraries, in order, for a page whose template did not load them.
  const VEGA = ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "vega-interpreter.js"];

  function load(name) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/" + name;
      script.onload = resolve;
      script.onerror = () => reject(new Error("could not load " + name));
      document.head.append(script);
    });
  }

  async function ready() {
    if (typeof vegaEmbed === "undefined") {
      for (const name of VEGA) await load(name);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const figures = document.querySelectorAll(".figure-chart[data-vega]");
    if (!figures.length) return;
    ready().then(() => figures.forEach(drawFigure)).catch((err) => {
      figures.forEach((el) => {
        el.textContent = "Chart failed: " + err.message;
        el.dataset.rendered = "error";
      });
    });
  });
})();
