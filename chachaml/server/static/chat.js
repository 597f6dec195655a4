// chachaml Chat page: sends questions to POST /api/chat and shows each answer with its tool
// calls. The conversation and the provider key live only in this browser tab; the key goes
// in the X-Chat-Api-Key header and nowhere else.
// Answers stream in as Server-Sent Events read with fetch (EventSource cannot POST): tool
// calls and text appear as they are produced, as text nodes. The final answer is the
// server's sanitized markdown HTML, parsed inert (DOMParser) and rebuilt here node by node
// from an allowlist, never inserted as markup; run ids and registered model names in it
// become links. If the stream cannot be read at all, the question is asked again as JSON.
"use strict";

(() => {
  const root = document.getElementById("chat");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const provider = $("chat-provider");
  const model = $("chat-model");
  const key = $("chat-key");
  const status = $("chat-key-status");
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
  // What the final answer may hold (the server's sanitizer allows no more).
  const TAGS = new Set(["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em",
    "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody",
    "tr", "th", "td"]);
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

  // Text with run ids and model names turned into links, as a fragment of text nodes.
  function mentions(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(mention)) {
      out.append(document.createTextNode(text.slice(last, m.index)));
      if (m[1]) out.append(link("/runs/" + m[1], m[0]));
      else out.append(link("/models/" + encodeURIComponent(m[2]), m[0]));
      last = m.index + m[0].length;
    }
    out.append(document.createTextNode(text.slice(last)));
    return out;
  }

  const safeHref = (href) => /^(https?:\/\/|\/(?!\/)|#)/i.test(href) || !/^[a-z][a-z0-9+.-]*:/i.test(href);

  // A copy of the server's sanitized HTML: allowlisted elements, only safe hrefs, text as text.
  function rebuild(source, inLink) {
    const out = document.createDocumentFragment();
    for (const node of source.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        out.append(inLink ? document.createTextNode(node.data) : mentions(node.data));
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const tag = node.localName;
        if (!TAGS.has(tag)) {
          out.append(rebuild(node, inLink));
          continue;
        }
        const copy = document.createElement(tag);
        if (tag === "a") {
          const href = node.getAttribute("href") || "";
          if (safeHref(href)) copy.setAttribute("href", href);
          copy.rel = "noopener noreferrer nofollow";
        }
        if (tag === "ol" && node.getAttribute("start")) copy.setAttribute("start", node.getAttribute("start"));
        copy.append(rebuild(node, inLink || tag === "a"));
        out.append(copy);
      }
    }
    return out;
  }

  function answerNode(data) {
    const box = el("div", "answer markdown");
    if (typeof data.answer_html === "string") {
      const parsed = new DOMParser().parseFromString(data.answer_html, "text/html");
      box.append(rebuild(parsed.body, false));
    } else {
      box.classList.remove("markdown");
      box.append(mentions(data.answer));
    }
    return box;
  }

  function toolCallItem(call) {
    const item = el("li", call.is_error ? "tool-call tool-error" : "tool-call");
    item.append(el("code", "tool-name", call.name));
    item.append(el("code", "tool-args", JSON.stringify(call.arguments)));
    const result = call.result.length > RESULT_CHARS
      ? call.result.slice(0, RESULT_CHARS) + "…"
      : call.result;
    item.append(el("pre", "tool-result", (call.is_error ? "error: " : "") + result));
    return item;
  }

  // The tool-call list of one reply; ``add`` appends a call and updates the count.
  function toolCalls() {
    const box = el("details", "tool-calls");
    box.open = true;
    const summary = el("summary", "");
    const list = el("ol");
    box.append(summary, list);
    const add = (call) => {
      list.append(toolCallItem(call));
      const n = list.children.length;
      summary.textContent = n + " tool call" + (n === 1 ? "" : "s");
    };
    return { box, add };
  }

  function entry(role, node) {
    const box = el("div", "chat-turn chat-" + role);
    box.append(node);
    log.append(box);
    box.scrollIntoView({ block: "end" });
    return box;
  }

  function request(text, streamed) {
    const headers = { "Content-Type": "application/json" };
    if (streamed) headers.Accept = "text/event-stream";
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("chachaml_csrf="));
    if (csrf) headers["X-CSRF-Token"] = decodeURIComponent(csrf.split("=")[1]);
    if (key.value) headers[keyHeader] = key.value;
    const body = { question: text, provider: provider.value, history };
    if (model.value.trim()) body.model = model.value.trim();
    return fetch("/api/chat", {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  }

  async function failure(response) {
    let data;
    try {
      data = await response.json();
    } catch {
      return new Error("the server answered " + response.status + " without JSON");
    }
    return new Error((data.error && data.error.message) || "the server answered " + response.status);
  }

  async function askJson(text) {
    const response = await request(text, false);
    if (!response.ok) throw await failure(response);
    try {
      return await response.json();
    } catch {
      throw new Error("the server answered " + response.status + " without JSON");
    }
  }

  // Each "event: name / data: json" block of the stream, to ``onEvent``, as it arrives.
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
      if (done) return;
    }
  }

  // Ask with a stream into ``pending``; the final answer's data. Falls back to one JSON
  // request when the stream cannot be had or read before anything arrived.
  async function ask(text, pending) {
    const calls = toolCalls();
    const partial = el("div", "answer-partial");
    let received = 0;
    let final = null;
    let failed = null;
    let response;
    try {
      response = await request(text, true);
    } catch {
      return askJson(text);
    }
    if (!response.ok) throw await failure(response);
    const type = response.headers.get("content-type") || "";
    if (!response.body || !type.startsWith("text/event-stream")) return askJson(text);
    calls.box.hidden = true;
    const onEvent = (name, data) => {
      received += 1;
      if (received === 1) pending.replaceChildren(calls.box, partial);
      if (name === "text") {
        partial.append(document.createTextNode(data.text));
      } else if (name === "tool_call") {
        calls.box.hidden = false;
        calls.add(data);
        partial.replaceChildren(); // that text led to tools: the answer comes after them
      } else if (name === "answer") {
        final = data;
      } else if (name === "error") {
        failed = new Error((data.error && data.error.message) || "the chat failed");
      }
    };
    try {
      await readEvents(response, onEvent);
    } catch (err) {
      if (!received) return askJson(text);
      throw new Error("the answer stream broke off: " + err.message);
    }
    if (failed) throw failed;
    if (!final) {
      if (!received) return askJson(text);
      throw new Error("the answer stream ended without an answer");
    }
    return final;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) return;
    entry("user", el("div", "question", text));
    const pending = entry("assistant", el("div", "muted", "Thinking…"));
    send.disabled = true;
    try {
      const data = await ask(text, pending);
      pending.replaceChildren(answerNode(data));
      const meta = data.provider + " · " + data.model + " · " + data.iterations + " replies";
      pending.append(el("div", "muted chat-meta", meta));
      if (data.tool_calls.length) {
        const calls = toolCalls();
        data.tool_calls.forEach(calls.add);
        pending.append(calls.box);
      }
      const answer = data.answer.slice(0, MAX_TURN_CHARS);
      history = [...history, { role: "user", content: text }, { role: "assistant", content: answer }]
        .slice(-MAX_HISTORY);
      const chars = () => history.reduce((n, turn) => n + turn.content.length, 0);
      while (history.length && chars() > MAX_HISTORY_CHARS) history = history.slice(2);
      question.value = "";
    } catch (err) {
      // what did arrive stays (tool calls, text so far); "Thinking…" goes
      for (const node of pending.querySelectorAll(":scope > .muted")) node.remove();
      pending.append(el("div", "error chat-error", err.message));
    } finally {
      send.disabled = false;
      question.focus();
    }
  });

  // Who answers the next question, and with whose key.
  function showKeyStatus() {
    const option = provider.selectedOptions[0];
    const who = provider.value + " · " + (model.value.trim() || option.dataset.defaultModel);
    const serverKey = option.dataset.serverKey === "yes";
    let text;
    let kind;
    if (key.value) {
      text = who + " answers with the key you entered (kept in this tab only).";
      kind = "chat-key-own";
    } else if (serverKey) {
      text = who + " answers with this server's " + provider.value + " key; enter your own key to use it instead.";
      kind = "chat-key-server";
    } else {
      text = "This server holds no " + provider.value + " API key: enter your own before asking " + who + ".";
      kind = "chat-key-missing";
    }
    status.textContent = text;
    status.className = "chat-key-status " + kind;
    key.placeholder = serverKey ? "optional: the server has one" : "needed (this tab only)";
  }

  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  provider.addEventListener("change", () => {
    model.placeholder = provider.selectedOptions[0].dataset.defaultModel;
    key.value = sessionStorage.getItem(keySlot()) || "";
    showKeyStatus();
  });
  model.addEventListener("input", showKeyStatus);
  key.addEventListener("input", () => {
    if (key.value) sessionStorage.setItem(keySlot(), key.value);
    else sessionStorage.removeItem(keySlot());
    showKeyStatus();
  });
  $("chat-forget").addEventListener("click", () => {
    sessionStorage.removeItem(keySlot());
    key.value = "";
    showKeyStatus();
  });
  $("chat-clear").addEventListener("click", () => {
    history = [];
    log.replaceChildren();
  });
  key.value = sessionStorage.getItem(keySlot()) || "";
  if (key.value) showKeyStatus();
})();
