// chachaml web UI: draws Vega-Lite charts, toggles log scales, typesets math, refreshes live pages.
// Loaded as a file (the Content-Security-Policy allows no inline script); charts use
// vega-interpreter so Vega needs no eval.
"use strict";

const charts = new Map();

function draw(el, logScale) {
  const spec = JSON.parse(el.dataset.spec);
  if (logScale) {
    spec.encoding.y.scale = { type: "log" };
    spec.transform = [{ filter: { field: "value", gt: 0 } }];
  }
  const previous = charts.get(el.id);
  if (previous) previous.finalize();
  return vegaEmbed(el, spec, {
    renderer: "canvas",
    ast: true,
    expr: vegaInterpreter.expressionInterpreter,
    defaultStyle: false,
    forceActionsMenu: true,
    tooltip: false,
    actions: { export: true, source: false, compiled: false, editor: false },
    downloadFileName: el.id,
  }).then((result) => {
    charts.set(el.id, result.view);
    el.dataset.rendered = "1";
  }).catch((err) => {
    el.textContent = "Chart failed: " + err.message;
    el.dataset.rendered = "error";
  });
}

function setup() {
  document.querySelectorAll(".chart[data-spec]").forEach((el) => draw(el, false));
  document.querySelectorAll("input.log-toggle").forEach((box) => {
    box.addEventListener("change", () => {
      const el = document.getElementById(box.dataset.chart);
      if (el) draw(el, box.checked);
    });
  });
  document.querySelectorAll(".math").forEach((el) => {
    katex.render(el.textContent, el, {
      displayMode: el.classList.contains("block"),
      throwOnError: false,
    });
  });
  const refresh = Number(document.body.dataset.refresh || 0);
  if (refresh > 0) {
    setInterval(() => {
      if (document.visibilityState === "visible") window.location.reload();
    }, refresh * 1000);
  }
}

document.addEventListener("DOMContentLoaded", setup);
