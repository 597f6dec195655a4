// chachaml web UI, the page shell on every page: the phone menu button, timestamps in the
// viewer's own zone, and tables that scroll sideways reachable by keyboard. Loaded without `defer` from <head> (it is small) so that <html> is marked
// as scripted before the first paint: the phone menu then starts closed instead of flashing open.
// Without JavaScript the menu stays open and times read in UTC, both still correct.
"use strict";

document.documentElement.classList.add("js");

(function () {
  const pad = (n) => String(n).padStart(2, "0");
  const LONG = new Intl.DateTimeFormat("en", { dateStyle: "full", timeStyle: "long" });
  const AGO_LIMIT = 30 * 86400; // older than a month, the date says more than "5 weeks ago"
  const UNITS = [
    ["day", 86400],
    ["h", 3600],
    ["min", 60],
  ];

  // "2025-04-18 20:13", the same shape as the server's UTC text, in the browser's zone
  function localText(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  // "just now", "3 min ago", "2 h ago", "5 days ago", "in 2 h"; "" past a month
  function relative(date, now) {
    const seconds = (now - date.getTime()) / 1000;
    const size = Math.abs(seconds);
    if (size >= AGO_LIMIT) return "";
    if (size < 45) return "just now";
    for (const [unit, length] of UNITS) {
      const n = Math.round(size / length);
      if (n >= 1) {
        const label = unit === "day" ? (n === 1 ? "day" : "days") : unit;
        return seconds >= 0 ? n + " " + label + " ago" : "in " + n + " " + label;
      }
    }
    return "";
  }

  function setAgo(el, date, now) {
    let hint = el.querySelector(".ago");
    const text = relative(date, now);
    if (!text) {
      if (hint) hint.remove();
      return;
    }
    if (!hint) {
      hint = document.createElement("span");
      hint.className = "ago";
      el.appendChild(hint);
    }
    hint.textContent = " · " + text;
  }

  function localize(root) {
    const now = Date.now();
    const found = root.matches && root.matches("time[datetime]") ? [root] : [];
    root.querySelectorAll("time[datetime]").forEach((el) => found.push(el));
    for (const el of found) {
      if (el.dataset.local) continue;
      const date = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(date.getTime())) continue;
      el.dataset.local = "1";
      el.title = LONG.format(date) + " · " + el.textContent.trim();
      el.textContent = localText(date);
      setAgo(el, date, now);
    }
  }

  function refreshHints() {
    const now = Date.now();
    document.querySelectorAll("time[data-local]").forEach((el) => {
      setAgo(el, new Date(el.getAttribute("datetime")), now);
    });
  }

  function setupMenu() {
    const button = document.querySelector(".menu-button");
    if (!button) return;
    const setOpen = (open) => button.setAttribute("aria-expanded", open ? "true" : "false");
    button.addEventListener("click", () => setOpen(button.getAttribute("aria-expanded") !== "true"));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        button.focus();
      }
    });
  }

  // A table wider than its box scrolls inside it (app.css); focusable, arrow keys scroll it.
  function markScrollers() {
    document.querySelectorAll("main table").forEach((table) => {
      if (table.scrollWidth > table.clientWidth + 1) table.tabIndex = 0;
      else if (table.getAttribute("tabindex") === "0") table.removeAttribute("tabindex");
    });
  }

  function setup() {
    setupMenu();
    localize(document);
    markScrollers();
    let pending = 0;
    const later = () => {
      clearTimeout(pending);
      pending = setTimeout(markScrollers, 150);
    };
    window.addEventListener("resize", later);
    // rows that other scripts add later (live pages) get local times too
    new MutationObserver((changes) => {
      for (const change of changes) {
        change.addedNodes.forEach((node) => {
          if (node.nodeType === Node.ELEMENT_NODE) localize(node);
        });
      }
      later();
    }).observe(document.body, { childList: true, subtree: true });
    setInterval(refreshHints, 30000);
  }

  window.chachamlTimes = { localize: localize };
  document.addEventListener("DOMContentLoaded", setup);
})();
