// Compare page: hide identical params (kept in the URL as same=hide), flip which way is
// better for a metric row (the ★ moves; flip=key,... in the URL), and redraw the scatter when an axis is picked.
// Everything also works without this file: the server renders the same state from the URL.
(() => {
  "use strict";
  function setQuery(name, value) {
    const url = new URL(window.location.href);
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
    window.history.replaceState(null, "", url.toString());
  }

  function setupHideSame() {
    const box = document.getElementById("hide-same");
    const table = document.getElementById("compare-table");
    if (!box || !table) return;
    box.addEventListener("change", () => {
      table.classList.toggle("hide-same", box.checked);
      setQuery("same", box.checked ? "hide" : "");
    });
  }

  function markBest(row) {
    const way = row.dataset.direction;
    const raw = (way === "min" ? row.dataset.bestMin : row.dataset.bestMax) || "";
    const best = new Set(raw.split(",").filter((s) => s !== "").map(Number));
    row.querySelectorAll("td").forEach((cell, i) => cell.classList.toggle("best", best.has(i)));
    const button = row.querySelector(".direction-toggle");
    const word = way === "min" ? "lower" : "higher";
    const key = row.dataset.key;
    button.textContent = word + " is better";
    button.setAttribute("aria-label", key + ": " + word + " is better; switch");
  }

  function setupDirections() {
    document.querySelectorAll("tr.metric-row").forEach((row) => {
      const button = row.querySelector(".direction-toggle");
      if (!button) return;
      button.addEventListener("click", () => {
        row.dataset.direction = row.dataset.direction === "min" ? "max" : "min";
        markBest(row);
        const key = row.dataset.key;
        const url = new URL(window.location.href);
        const flipped = new Set((url.searchParams.get("flip") || "").split(",").filter(Boolean));
        if (flipped.has(key)) flipped.delete(key);
        else flipped.add(key);
        setQuery("flip", [...flipped].join(","));
      });
    });
  }

  function setupScatter() {
    const form = document.getElementById("scatter-form");
    if (!form) return;
    form.querySelectorAll("select").forEach((select) => {
      select.addEventListener("change", () => form.submit());
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupHideSame();
    setupDirections();
    setupScatter();
  });
})();
