// Artifacts page: picking a file in the tree fetches its preview from the page's JSON twin
// (?name=) and shows it beside the list, without reloading; the URL keeps the choice. Data is
// written with textContent only. Without JavaScript the links load the page with ?name=.
(() => {
  "use strict";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function cellText(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function body(sel) {
    const p = sel.preview;
    const box = el("div", "preview-body");
    if (p.kind === "image") {
      const img = el("img", "preview");
      img.src = p.src;
      img.alt = sel.name;
      box.append(img);
    } else if (p.kind === "table") {
      const scroll = el("div", "table-scroll");
      const table = el("table");
      const head = el("tr");
      p.headers.forEach((h) => {
        const th = el("th", null, cellText(h));
        th.scope = "col";
        head.append(th);
      });
      table.append(el("thead"));
      table.tHead.append(head);
      const rows = el("tbody");
      p.rows.forEach((row) => {
        const tr = el("tr");
        row.forEach((c) => tr.append(el("td", null, cellText(c))));
        rows.append(tr);
      });
      table.append(rows);
      scroll.append(table);
      box.append(scroll);
      if (p.total_rows > p.rows.length) {
        box.append(el("p", "muted", p.rows.length + " of " + p.total_rows + " rows."));
      }
    } else if (p.kind === "text" || p.kind === "json") {
      box.append(el("pre", "preview", p.text));
      if (p.cut) box.append(el("p", "muted", "Preview cut; download for the rest."));
    } else {
      box.append(el("p", "muted", "No preview: " + (p.reason || "not previewable") + ". Use download."));
    }
    return box;
  }

  function render(pane, sel) {
    pane.replaceChildren();
    pane.append(el("h2", "preview-name", sel.name));
    const meta = el("p", "muted preview-meta",
      sel.content_type + " · " + sel.size_text + " (" + sel.size + " bytes) · sha256 " +
      sel.sha256.slice(0, 12) + " · ");
    const link = el("a", null, "download");
    link.href = sel.url + "?download=1";
    meta.append(link);
    pane.append(meta, body(sel));
  }

  async function pick(browser, item) {
    const pane = browser.querySelector(".artifact-preview");
    const name = item.dataset.name;
    browser.querySelectorAll(".artifact-item[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
    item.setAttribute("aria-current", "true");
    pane.setAttribute("aria-busy", "true");
    try {
      const answer = await fetch(browser.dataset.api + "?name=" + encodeURIComponent(name),
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      const data = await answer.json().catch(() => null);
      if (!answer.ok || !data || !data.selected) {
        const message = (data && data.error && data.error.message) || answer.status + " " + answer.statusText;
        pane.replaceChildren(el("p", "error", "Preview failed: " + message));
      } else {
        render(pane, data.selected);
      }
    } catch (err) {
      pane.replaceChildren(el("p", "error", "Preview failed: " + err.message));
    }
    pane.removeAttribute("aria-busy");
    const url = new URL(window.location.href);
    url.searchParams.set("name", name);
    history.replaceState(null, "", url);
  }

  function setup() {
    const browser = document.querySelector(".artifact-browser");
    if (!browser) return;
    browser.querySelectorAll(".artifact-item").forEach((item) => {
      item.addEventListener("click", (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        pick(browser, item);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
