// chachaml web UI: typesets math, refreshes live pages, and sends the write forms (tag, note,
// promote) as JSON POSTs with the write token. Loaded as a file (the Content-Security-Policy
// allows no inline script). Charts are drawn by charts.js.
"use strict";

const TOKEN_SLOT = "chachaml.write.token";

// A signed-in browser echoes its CSRF cookie in a header on every write (double submit).
function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("chachaml_csrf="));
  return found ? decodeURIComponent(found.slice("chachaml_csrf=".length)) : "";
}

function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || (el.dataset.optional && el.value === "")) continue;
    body[el.name] = el.dataset.kind === "int" ? Number(el.value) : el.value;
  }
  return body;
}

async function send(form) {
  const error = form.querySelector(".action-error");
  error.hidden = true;
  const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() };
  const token = sessionStorage.getItem(TOKEN_SLOT);
  if (token) headers.Authorization = "Bearer " + token;
  try {
    const answer = await fetch(form.dataset.action, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(formBody(form)),
      credentials: "same-origin",
    });
    if (answer.ok) {
      window.location.reload();
      return;
    }
    const data = await answer.json().catch(() => null);
    error.textContent = (data && data.error && data.error.message) || answer.status + " " + answer.statusText;
  } catch (err) {
    error.textContent = "Request failed: " + err.message;
  }
  error.hidden = false;
}

function setupActions() {
  const token = document.getElementById("write-token");
  if (token) {
    token.value = sessionStorage.getItem(TOKEN_SLOT) || "";
    token.addEventListener("input", () => {
      if (token.value) sessionStorage.setItem(TOKEN_SLOT, token.value);
      else sessionStorage.removeItem(TOKEN_SLOT);
    });
  }
  document.querySelectorAll("form.action[data-action]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(form);
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
  const refresh = Number(document.body.dataset.refresh || 0);
  if (refresh > 0) {
    setInterval(() => {
      if (document.visibilityState === "visible") window.location.reload();
    }, refresh * 1000);
  }
}

document.addEventListener("DOMContentLoaded", setup);
