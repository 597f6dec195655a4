// The cross-run figures of the Compare and Experiment pages (parallel coordinates, a
// param-vs-metric scatter, a metric over run start time): server-built Vega-Lite specs in
// <div class="chart figure-chart" data-vega='...'>, drawn as they are. Metric curves are
// charts.js's (.chart[data-spec]); these are not line charts over steps, so they stay apart.
// Vega runs through vega-interpreter (no eval); tooltips are vega-tooltip elements styled
// from app.css (its default style would be an inline <style>, which the CSP forbids).
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

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".figure-chart[data-vega]").forEach(drawFigure);
  });
})();
