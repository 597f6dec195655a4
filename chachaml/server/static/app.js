// chachaml web UI: typesets math and sends the write forms (tag, note, promote) as JSON POSTs
// with the write token. Loaded as a file (the Content-Security-Policy allows no inline script).
// Charts are drawn by charts.js; live pages update in place (runs.js, run.js, pipelines.js).
"use strict";

function setupActions() {
  ChachamlWrites.keepToken();
  document.querySelectorAll("form.action[data-action]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      ChachamlWrites.submit(form);
    });
  });
}

function setup() {
  setupActions();
  document.querySelectorAll(".math").forEach((el) => {
    katex.render(el.textContent, el, {
      displayMode: el.classList.contains("block"),
      throwOnError: false,
    });
  });
}

document.addEventListener("DOMContentLoaded", setup);
