// The UI's writes, once for every page: JSON POSTs carrying the write token kept in this tab
// (sessionStorage) and the CSRF header of a signed-in browser (double submit). app.js (the
// tag, note and promote forms), registry.js and alerts.js all send through it.
"use strict";

const ChachamlWrites = (() => {
  const TOKEN_SLOT = "chachaml.write.token";

  function csrfToken() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("chachaml_csrf="));
    return found ? decodeURIComponent(found.slice("chachaml_csrf=".length)) : "";
  }

  // a form's named fields; data-optional fields left empty are skipped, data-kind="int" is a number
  function formBody(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || (el.dataset.optional && el.value === "")) continue;
      body[el.name] = el.dataset.kind === "int" ? Number(el.value) : el.value;
    }
    return body;
  }

  // POST a JSON body; resolves to {ok, data} or {ok: false, data: error, message} and never throws
  async function post(url, body) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() };
    const token = sessionStorage.getItem(TOKEN_SLOT);
    if (token) headers.Authorization = "Bearer " + token;
    try {
      const answer = await fetch(url, {
        method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin",
      });
      const data = await answer.json().catch(() => null);
      if (answer.ok) return { ok: true, data: data };
      const error = (data && data.error) || {};
      return { ok: false, data: error, message: error.message || answer.status + " " + answer.statusText };
    } catch (err) {
      return { ok: false, data: {}, message: "Request failed: " + err.message };
    }
  }

  // send a form.action (its body, or the one given) and reload, or show the error in the form
  async function submit(form, body) {
    const error = form.querySelector(".action-error");
    error.hidden = true;
    const result = await post(form.dataset.action, body === undefined ? formBody(form) : body);
    if (result.ok) {
      window.location.reload();
      return;
    }
    error.textContent = result.message;
    error.hidden = false;
  }

  // the write-token box: filled from this tab's storage, kept there as it is typed
  function keepToken() {
    const box = document.getElementById("write-token");
    if (!box || box.dataset.kept) return;
    box.dataset.kept = "1";
    box.value = sessionStorage.getItem(TOKEN_SLOT) || "";
    box.addEventListener("input", () => {
      if (box.value) sessionStorage.setItem(TOKEN_SLOT, box.value);
      else sessionStorage.removeItem(TOKEN_SLOT);
    });
  }

  return { formBody, post, submit, keepToken };
})();
