// Model page: the registry's writes as JSON POSTs (promote, set alias, remove alias), sent
// with the write token kept in this tab (app.js keeps the box in sessionStorage) and the
// CSRF header of a signed-in browser. Promoting to production asks first, in the page (the
// browser's confirm() dialog would be blocked or unnoticed).
(() => {
  "use strict";
  const TOKEN_SLOT = "chachaml.write.token";

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

  async function post(form, body) {
    const error = form.querySelector(".action-error");
    error.hidden = true;
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() };
    const token = sessionStorage.getItem(TOKEN_SLOT);
    if (token) headers.Authorization = "Bearer " + token;
    try {
      const answer = await fetch(form.dataset.action, {
        method: "POST",
        headers: headers,
        body: JSON.stringify(body),
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

  function setupPromote() {
    const form = document.getElementById("promote-form");
    if (!form) return;
    const panel = document.getElementById("promote-confirm");
    const hide = () => { panel.hidden = true; };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = formBody(form);
      if (body.stage !== "production") {
        post(form, body);
        return;
      }
      const current = form.dataset.production;
      let text = "Promote v" + body.version + " to production?";
      if (current && Number(current) !== body.version) {
        text += " v" + current + " leaves production and is archived.";
      }
      panel.querySelector(".confirm-text").textContent = text;
      panel.hidden = false;
      panel.querySelector(".confirm-go").focus();
    });
    panel.querySelector(".confirm-go").addEventListener("click", () => {
      hide();
      post(form, formBody(form));
    });
    panel.querySelector(".confirm-cancel").addEventListener("click", hide);
    form.querySelectorAll("select").forEach((s) => s.addEventListener("change", hide));
  }

  function setupAliases() {
    const form = document.getElementById("alias-form");
    if (form) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        post(form, formBody(form));
      });
    }
    const remover = document.getElementById("alias-delete-form");
    document.querySelectorAll("button.alias-remove").forEach((button) => {
      button.addEventListener("click", () => post(remover, { alias: button.dataset.alias }));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupPromote();
    setupAliases();
  });
})();
