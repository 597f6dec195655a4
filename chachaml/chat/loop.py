"""The tool loop: ask a model, run the tools it asks for through MCP, repeat until it answers.

The tools are those of the chachaml MCP server, listed and called through an MCP client
session (in memory for an in-process server, streamable HTTP for a URL), so the chat sees
exactly what an external agent sees. Tool errors go back to the model as tool results; the
loop stops with :class:`~chachaml.chat.errors.IterationLimitReached` after
``max_iterations`` model replies that still ask for tools.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from chachaml.chat.errors import ChatError, IterationLimitReached, MissingApiKey
from chachaml.chat.models import (
    DEFAULT_MODELS,
    MAX_MESSAGE_CHARS,
    PROVIDERS,
    ChatAnswer,
    EventSink,
    Message,
    Provider,
    TextSink,
    ToolCall,
    ToolDef,
    ToolOutcome,
    ToolRequest,
    conversation_size_error,
)
from chachaml.chat.providers.conversation import Connection, Conversation, open_conversation
from chachaml.client import bridge
from chachaml.errors import InvalidInput, import_extra
from chachaml.settings import Settings

if TYPE_CHECKING:
    from mcp import Client
    from mcp.server.mcpserver import MCPServer

SYSTEM_PROMPT = """\
You answer questions about machine-learning experiments tracked in chachaml, using only what
its tools return.
- Look things up with the tools; never guess run ids, names, versions or values.
- Ground every claim: cite run ids, experiment names, model names and version numbers, and
  metric and param values exactly as the tools returned them.
- When the tools return nothing relevant or the data cannot answer the question, say so
  plainly and say what is missing; do not fill the gap with general knowledge.
- A tool that fails answers with an error message: read it, then fix the arguments or use
  another tool.
- Keep answers short; use a small table when comparing runs."""

MAX_RESULT_CHARS = 20_000
SHORT_RESULT_CHARS = 300
HistoryItem = Message | Mapping[str, str]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _checked(
    question: str, provider: str, history: Sequence[HistoryItem] | None, max_iterations: int
) -> tuple[Provider, list[Message]]:
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("question must be a non-empty string")
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    import_extra(provider, "chat", f"chat with {provider}")  # before any task group wraps it
    if max_iterations < 1:
        raise InvalidInput(f"max_iterations must be at least 1, got {max_iterations}")
    try:
        turns = [m if isinstance(m, Message) else Message.model_validate(m) for m in history or ()]
    except ValidationError as exc:
        raise InvalidInput(
            f"history items need a role (user or assistant) and content of at most"
            f" {MAX_MESSAGE_CHARS} characters: {exc}"
        ) from None
    too_much = conversation_size_error(question, turns)
    if too_much is not None:
        raise InvalidInput(too_much)
    chosen: Provider = "anthropic" if provider == "anthropic" else "openai"
    return chosen, turns


def connection(
    provider: Provider,
    *,
    api_key: str | None,
    model: str | None,
    base_url: str | None,
    timeout: float,
    max_retries: int,
    settings: Settings,
) -> Connection:
    """Fill in the key, model and endpoint from the arguments, then the settings."""
    if provider == "anthropic":
        key, url, var = settings.anthropic_api_key, settings.anthropic_base_url, "ANTHROPIC"
    else:
        key, url, var = settings.openai_api_key, settings.openai_base_url, "OPENAI"
    key = api_key or key
    if not key:
        raise MissingApiKey(f"no {provider} API key: pass api_key or set {var}_API_KEY")
    return Connection(
        provider=provider,
        model=model or DEFAULT_MODELS[provider],
        api_key=key,
        base_url=base_url or url,
        timeout=timeout,
        max_retries=max_retries,
    )


async def list_tools(client: Client) -> list[ToolDef]:
    """Every tool the MCP session offers, following pagination."""
    tools: list[ToolDef] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(
            ToolDef(t.name, t.description or t.title or t.name, dict(t.input_schema))
            for t in page.tools
        )
        cursor = page.next_cursor
        if not cursor:
            return tools


async def call_tool(client: Client, request: ToolRequest) -> ToolOutcome:
    """Run one tool call through the MCP session; failures become error text for the model."""
    from mcp_types import TextContent

    try:
        result = await client.call_tool(request.name, request.arguments)
    except Exception as exc:
        return ToolOutcome(request, f"{type(exc).__name__}: {exc}", True)
    text = "\n".join(b.text for b in result.content if isinstance(b, TextContent))
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, default=str)
    return ToolOutcome(request, _short(text, MAX_RESULT_CHARS), bool(result.is_error))


async def run_loop(
    client: Client,
    convo: Conversation,
    conn: Connection,
    max_iterations: int,
    on_event: EventSink | None = None,
) -> ChatAnswer:
    """Alternate model replies and tool calls until the model answers without tools.

    With ``on_event``, replies are streamed: ``text`` events as the model writes (text of a
    reply that then asks for tools included) and a ``tool_call`` event as each call returns.
    """
    calls: list[ToolCall] = []
    on_text: TextSink | None = None
    if on_event is not None:
        sink = on_event

        async def on_text(piece: str) -> None:
            await sink("text", {"text": piece})

    for iteration in range(1, max_iterations + 1):
        turn = await convo.reply(on_text)
        if not turn.requests:
            return ChatAnswer(
                answer=turn.text,
                provider=conn.provider,
                model=conn.model,
                iterations=iteration,
                tool_calls=calls,
            )
        if iteration == max_iterations:
            break
        outcomes: list[ToolOutcome] = []
        for request in turn.requests:
            outcome = await call_tool(client, request)
            outcomes.append(outcome)
            call = ToolCall(
                name=request.name,
                arguments=request.arguments,
                result=_short(outcome.text, SHORT_RESULT_CHARS),
                is_error=outcome.is_error,
            )
            calls.append(call)
            if on_event is not None:
                await on_event("tool_call", call.model_dump(mode="json"))
        convo.add_results(turn, outcomes)
    raise IterationLimitReached(
        f"the model was still calling tools after {max_iterations} replies"
        f" ({len(calls)} tool calls); ask a narrower question or raise max_iterations",
        calls,
    )


async def aask(
    question: str,
    *,
    server: MCPServer | str,
    provider: str = "anthropic",
    api_key: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    history: Sequence[HistoryItem] | None = None,
    max_iterations: int = 10,
    timeout: float = 60.0,
    max_retries: int = 2,
    settings: Settings | None = None,
    on_event: EventSink | None = None,
) -> ChatAnswer:
    """Answer ``question`` with the tools of ``server`` (an MCP server or its URL).

    ``on_event``, if given, streams the replies and hears each piece of text and each tool
    call as it happens (see :func:`run_loop`).

    The key comes from ``api_key`` or the provider's environment variable
    (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``); the SDK retries rate limits, overloads and
    timeouts ``max_retries`` times with backoff before a
    :class:`~chachaml.chat.errors.ProviderError` is raised.
    """
    from mcp import Client

    chosen, turns = _checked(question, provider, history, max_iterations)
    conn = connection(
        chosen,
        api_key=api_key,
        model=model,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        settings=settings or Settings.from_env(),
    )
    failed: ChatError | None = None
    async with Client(server) as client:  # its task group would wrap errors in a group
        tools = await list_tools(client)
        system = SYSTEM_PROMPT + (f"\n\n{client.instructions}" if client.instructions else "")
        convo = open_conversation(conn, system, turns, question, tools)
        try:
            return await run_loop(client, convo, conn, max_iterations, on_event)
        except ChatError as exc:
            failed = exc
        finally:
            await convo.close()
    raise failed


def ask(
    question: str,
    provider: str = "anthropic",
    api_key: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    history: Sequence[HistoryItem] | None = None,
    max_iterations: int = 10,
    *,
    store: str | None = None,
    artifacts: str | None = None,
    toolsets: Iterable[str] = (),
    allow_writes: bool = False,
    timeout: float = 60.0,
    max_retries: int = 2,
    settings: Settings | None = None,
    on_event: EventSink | None = None,
) -> ChatAnswer:
    """Answer ``question`` about the store at ``store`` (default: ``CHACHAML_STORE``).

    Opens the store, serves its MCP tools in memory (read-only unless ``allow_writes``; opt-in
    ``toolsets`` as for ``chachaml mcp``) and runs :func:`aask`, streaming to ``on_event`` if
    given (awaited on the chat's own event loop). Safe to call where an event loop is already
    running (a notebook): the loop then runs on a worker thread.
    """
    s = settings or Settings.from_env()

    async def main() -> ChatAnswer:
        from chachaml.client.remote import open_any_store
        from chachaml.server.mcp.server import build_mcp
        from chachaml.store.artifacts import open_artifact_store

        opened = await open_any_store(store or s.store_url, token=s.token)
        try:
            server = build_mcp(
                opened,
                artifacts=open_artifact_store(artifacts or s.artifact_root, s.s3),
                toolsets=toolsets,
                read_only=not allow_writes,
                user=s.user,
            )
            return await aask(
                question,
                server=server,
                provider=provider,
                api_key=api_key,
                model=model,
                base_url=base_url,
                history=history,
                max_iterations=max_iterations,
                timeout=timeout,
                max_retries=max_retries,
                settings=s,
                on_event=on_event,
            )
        finally:
            await opened.close()

    return bridge.run(main, thread_name="chachaml-chat")
