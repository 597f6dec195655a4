// Alerts page: create, edit, mute, delete and test-fire rules through the JSON POST actions
// (chachaml/server/ui/alert_actions.py), with the write token kept in this tab and the CSRF
// header of a signed-in browser. Errors are shown beside the form, which keeps what was
// typed; deleting asks first in the page (no window.confirm).
(() => {
  "use strict";
  const post = ChachamlWrites.post;

  // a row's rule, as the page encoded it (URL-encoded JSON)
  function ruleOf(row) {
    return JSON.parse(decodeURIComponent(row.dataset.rule));
  }

  function show(el, text) {
    el.textContent = text;
    el.hidden = !text;
  }

  // ---- the rule form ----
  function formBody(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      body[el.name] = el.type === "checkbox" ? el.checked : el.value;
    }
    return body;
  }

  function showKind(form) {
    const kind = form.elements.kind.value;
    form.querySelectorAll("[data-kinds]").forEach((label) => {
      const on = label.dataset.kinds.split(" ").includes(kind);
      label.hidden = !on;
      label.querySelectorAll("input, select").forEach((el) => { el.disabled = !on; });
    });
  }

  function clearErrors(form) {
    show(form.querySelector(".action-error"), "");
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  function setMode(form, rule) {
    const editing = Boolean(rule);
    form.elements.mode.value = editing ? "edit" : "create";
    form.elements.name.readOnly = editing;
    form.querySelectorAll(".edit-only").forEach((el) => { el.hidden = !editing; });
    form.querySelector(".rule-save").textContent = editing ? "Save rule" : "Create rule";
    document.getElementById("rule-form-title").textContent = editing ? "Edit rule " + rule.name : "New rule";
    const kept = form.querySelector(".webhook-kept");
    kept.textContent = editing && rule.webhook
      ? "Webhook " + rule.webhook + (rule.signed ? " (signed)" : "") + " is kept unless you type a new URL or tick remove; the secret is kept unless you type a new one."
      : "";
    kept.hidden = !kept.textContent;
  }

  function fill(form, rule) {
    for (const el of form.elements) {
      if (!el.name || el.name === "mode") continue;
      if (el.type === "checkbox") el.checked = el.name === "muted" ? Boolean(rule.muted) : false;
      else if (el.name === "webhook_url" || el.name === "secret") el.value = "";
      else if (el.name in rule) el.value = rule[el.name];
    }
  }

  function setupForm() {
    const form = document.getElementById("rule-form");
    if (!form) return;
    form.elements.kind.addEventListener("change", () => showKind(form));
    showKind(form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const result = await post(form.dataset.action, formBody(form));
      if (result.ok) {
        window.location.reload();
        return;
      }
      show(form.querySelector(".action-error"), result.message);
      for (const field of result.data.fields || []) {
        const name = field.loc[field.loc.length - 1];
        const el = form.elements[name];
        if (el && el.setAttribute) {
          el.setAttribute("aria-invalid", "true");
          el.focus();
        }
      }
    });
    form.querySelector(".rule-cancel").addEventListener("click", () => {
      form.reset();
      setMode(form, null);
      showKind(form);
      clearErrors(form);
    });
    document.querySelectorAll("tr.rule .rule-edit").forEach((button) => {
      button.addEventListener("click", () => {
        const rule = ruleOf(button.closest("tr"));
        clearErrors(form);
        fill(form, rule);
        setMode(form, rule);
        showKind(form);
        form.scrollIntoView({ block: "start" });
        form.elements.kind.focus();
      });
    });
  }

  // ---- row actions ----
  function attemptText(a) {
    const what = a.error ? a.error : "HTTP " + a.status_code;
    return what + " in " + a.seconds.toFixed(2) + " s";
  }

  function setupRows() {
    const status = document.getElementById("rule-status");
    const error = document.getElementById("rule-error");
    const confirm = document.getElementById("rule-confirm");
    let pending = null;
    const reset = () => { show(status, ""); show(error, ""); };
    const done = (result) => {
      if (result.ok) window.location.reload();
      else show(error, result.message);
    };
    document.querySelectorAll("tr.rule").forEach((row) => {
      const name = ruleOf(row).name;
      row.querySelector(".rule-mute").addEventListener("click", async (event) => {
        reset();
        const muted = event.currentTarget.dataset.muted !== "true";
        done(await post("/alerts/rules/mute", { name: name, muted: muted }));
      });
      row.querySelector(".rule-test").addEventListener("click", async (event) => {
        reset();
        const button = event.currentTarget;
        button.disabled = true;
        show(status, "Sending a test event to the webhook of " + name + "…");
        const result = await post("/alerts/rules/test", { name: name });
        button.disabled = false;
        if (!result.ok) {
          show(status, "");
          show(error, result.message);
          return;
        }
        const r = result.data;
        const tries = r.attempts.map(attemptText).join("; ");
        show(status, (r.delivered ? "Test event delivered" : "Test event not delivered") +
          " to " + r.webhook + " (" + r.attempts.length + " attempt" +
          (r.attempts.length === 1 ? "" : "s") + ": " + tries + "). No alert was recorded.");
        status.classList.toggle("failed", !r.delivered);
      });
      row.querySelector(".rule-delete").addEventListener("click", () => {
        reset();
        pending = name;
        confirm.querySelector(".confirm-text").textContent =
          "Delete rule " + name + " and its event history? This cannot be undone.";
        confirm.hidden = false;
        confirm.querySelector(".confirm-go").focus();
      });
    });
    if (!confirm) return;
    confirm.querySelector(".confirm-go").addEventListener("click", async () => {
      confirm.hidden = true;
      if (pending !== null) done(await post("/alerts/rules/delete", { name: pending }));
    });
    confirm.querySelector(".confirm-cancel").addEventListener("click", () => {
      confirm.hidden = true;
      pending = null;
    });
  }

  function setup() {
    ChachamlWrites.keepToken();
    setupForm();
    setupRows();
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
