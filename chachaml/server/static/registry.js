// Model page: the registry's writes as JSON POSTs (promote, set alias, remove alias), sent
// with the write token kept in this tab and the
// CSRF header of a signed-in browser. Promoting to production asks first, in the page (the
// browser's confirm() dialog would be blocked or unnoticed).
(() => {
  "use strict";
  function setupPromote() {
    const form = document.getElementById("promote-form");
    if (!form) return;
    const panel = document.getElementById("promote-confirm");
    const hide = () => { panel.hidden = true; };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = ChachamlWrites.formBody(form);
      if (body.stage !== "production") {
        ChachamlWrites.submit(form, body);
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
      ChachamlWrites.submit(form);
    });
    panel.querySelector(".confirm-cancel").addEventListener("click", hide);
    form.querySelectorAll("select").forEach((s) => s.addEventListener("change", hide));
  }

  function setupAliases() {
    const form = document.getElementById("alias-form");
    if (form) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        ChachamlWrites.submit(form);
      });
    }
    const remover = document.getElementById("alias-delete-form");
    document.querySelectorAll("button.alias-remove").forEach((button) => {
      button.addEventListener("click", () => ChachamlWrites.submit(remover, { alias: button.dataset.alias }));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupPromote();
    setupAliases();
  });
})();
