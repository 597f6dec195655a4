// chachaml Chat page: sends questions to POST /api/chat and shows each answer with its tool
// calls. The conversation and the provider key live only in this browser tab; the key goes
// in the X-Chat-Api-Key header and nowhere else. Answers are inserted as text nodes (never
// as HTML); run ids and registered model names in them become links.
"use strict";

(() => {
  const root = document.getElementById("chat");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const provider = $("chat-provider");
  const model = $("chat-model");
  const key = $("chat-key");
  const log = $("chat-log");
  const form = $("chat-form");
  const question = $("chat-question");
  const send = $("chat-send");
  const keyHeader = root.dataset.keyHeader;
  const models = JSON.parse(root.dataset.models || "[]");
  const RESULT_CHARS = 400;
  // The server's bounds (chachaml/chat/models.py): 40 turns of at most 20,000 characters,
  // 200,000 in all with the question (at most 10,000).
  const MAX_HISTORY = 40;
  const MAX_TURN_CHARS = 20000;
  const MAX_HISTORY_CHARS = 190000;
  let history = [];

  const keySlot = () => "chachaml.chat.key." + provider.value;
  const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // A run id (32 hex digits), or a registered model name, with its version if one follows.
  const runPart = "\\b([0-9a-f]{32})\\b";
  const names = [...models].sort((a, b) => b.length - a.length).map(escapeRe).join("|");
  const modelPart = "(?<![\\w.-])(" + names + ")(?:\\s+(?:v|version\\s+)\\d+)?(?![\\w-])";
  const mention = new RegExp(models.length ? runPart + "|" + modelPart : runPart, "g");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(href, text) {
    const a = el("a", "", text);
    a.href = href;
    return a;
  }

  // The answer as text nodes, with run ids and model names turned into links.
  function linked(text) {
    const box = el("div", "answer");
    let last = 0;
    for (const m of text.matchAll(mention)) {
      box.append(document.createTextNode(text.slice(last, m.index)));
      if (m[1]) box.append(link("/runs/" + m[1], m[0]));
      else box.append(link("/models/" + encodeURIComponent(m[2]), m[0]));
      last = m.index + m[0].length;
    }
    box.append(document.createTextNode(text.slice(last)));
    return box;
  }

  function toolCalls(calls) {
    const box = el("details", "tool-calls");
    box.open = true;
    box.append(el("summary", "", calls.length + " tool call" + (calls.length === 1 ? "" : "s")));
    const list = el("ol");
    for (const call of calls) {
      const item = el("li", call.is_error ? "tool-call tool-error" : "tool-call");
      item.append(el("code", "tool-name", call.name));
      item.append(el("code", "tool-args", JSON.stringify(call.arguments)));
      const result = call.result.length > RESULT_CHARS
        ? call.result.slice(0, RESULT_CHARS) + "…"
        : call.result;
      item.append(el("pre", "tool-result", (call.is_error ? "error: " : "") + result));
      list.append(item);
    }
    box.append(list);
    return box;
  }

  function entry(role, node) {
    const box = el("div", "chat-turn chat-" + role);
    box.append(node);
    log.append(box);
    box.scrollIntoView({ block: "end" });
    return box;
  }

  async function ask(text) {
    const headers = { "Content-Type": "application/json" };
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("chachaml_csrf="));
    if (csrf) headers["X-CSRF-Token"] = decodeURIComponent(csrf.split("=")[1]);
    if (key.value) headers[keyHeader] = key.value;
    const body = { question: text, provider: provider.value, history };
    if (model.value.trim()) body.model = model.value.trim();
    const response = await fetch("/api/chat", {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data;
    try {
      data = await response.json();
    } catch {
      throw new Error("the server answered " + response.status + " without JSON");
    }
    if (!response.ok) {
      throw new Error((data.error && data.error.message) || "the server answered " + response.status);
    }
    return data;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) return;
    entry("user", el("div", "question", text));
    const pending = entry("assistant", el("div", "muted", "Thinking…"));
    send.disabled = true;
    try {
      const data = await ask(text);
      pending.replaceChildren(linked(data.answer));
      const meta = data.provider + " · " + data.model + " · " + data.iterations + " replies";
      pending.append(el("div", "muted chat-meta", meta));
      if (data.tool_calls.length) pending.append(toolCalls(data.tool_calls));
      const answer = data.answer.slice(0, MAX_TURN_CHARS);
      history = [...history, { role: "user", content: text }, { role: "assistant", content: answer }]
        .slice(-MAX_HISTORY);
      const chars = () => history.reduce((n, turn) => n + turn.content.length, 0);
      while (history.length && chars() > MAX_HISTORY_CHARS) history = history.slice(2);
      question.value = "";
    } catch (err) {
      pending.replaceChildren(el("div", "error chat-error", err.message));
    } finally {
      send.disabled = false;
      question.focus();
    }
  });

  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  provider.addEventListener("change", () => {
    model.placeholder = provider.selectedOptions[0].dataset.defaultModel;
    key.value = sessionStorage.getItem(keySlot()) || "";
  });
  key.addEventListener("input", () => {
    if (key.value) sessionStorage.setItem(keySlot(), key.value);
    else sessionStorage.removeItem(keySlot());
  });
  $("chat-forget").addEventListener("click", () => {
    sessionStorage.removeItem(keySlot());
    key.value = "";
  });
  $("chat-clear").addEventListener("click", () => {
    history = [];
    log.replaceChildren();
  });
  key.value = sessionStorage.getItem(keySlot()) || "";
})();
