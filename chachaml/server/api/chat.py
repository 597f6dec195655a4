"""``POST /api/chat``: ask a question about the store, answered by a model through the MCP tools.

The body is ``{"question", "provider", "model", "history", "max_iterations"}``; the answer is
a :class:`~chachaml.chat.ChatAnswer` (answer, iterations, every tool call) with
``answer_html``, the answer's markdown as sanitized HTML. With ``Accept: text/event-stream``
(or ``?stream=1``) the same answer comes as Server-Sent Events while it is produced
(:mod:`chachaml.server.api.chat_stream`). The provider key
comes from the ``X-Chat-Api-Key`` header, else from the server's environment
(``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``); it is used for the one request and never stored
or logged. The provider endpoint is chosen by the server only, so a caller cannot send a key
elsewhere. A request holds at most 40 history turns of at most 20,000 characters each and
200,000 characters in all (a 422 names the limit), in a body of at most 1 MiB (413); a
provider's error text is relayed without anything key-shaped in it. The tools are read-only;
callers need read access to the API.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chachaml.chat.errors import IterationLimitReached, MissingApiKey, ProviderError
from chachaml.chat.loop import aask, connection
from chachaml.chat.models import (
    MAX_HISTORY_TURNS,
    EventSink,
    Message,
    Provider,
    conversation_size_error,
)
from chachaml.errors import ChachamlError
from chachaml.server.access import require
from chachaml.server.api.chat_markdown import answer_html
from chachaml.server.api.chat_stream import EventStream, wants_stream
from chachaml.server.api.endpoint import read_limited
from chachaml.server.errors import ApiError, envelope, from_validation, status_of
from chachaml.server.mcp.server import build_mcp
from chachaml.settings import Settings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from chachaml.store.artifacts import ArtifactStore
    from chachaml.store.protocol import Store

log = logging.getLogger(__name__)
KEY_HEADER = "x-chat-api-key"
PROVIDER_STATUS = {"rate_limit": 429, "timeout": 504}


MAX_BODY_BYTES = 1024 * 1024


class ChatRequest(BaseModel):
    """The body of ``POST /api/chat``: bounded, since every character is sent on the key."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=10_000)
    provider: Provider = "anthropic"
    model: str | None = Field(default=None, min_length=1, max_length=200)
    history: list[Message] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    max_iterations: int = Field(default=10, ge=1, le=25)

    @model_validator(mode="after")
    def _bounded(self) -> ChatRequest:
        too_much = conversation_size_error(self.question, self.history)
        if too_much is not None:
            raise ValueError(too_much)
        return self


@dataclass(frozen=True)
class ChatOptions:
    """Server-side chat settings: fallback keys and endpoints, timeout, retries, toolsets."""

    settings: Settings = field(default_factory=Settings)
    timeout: float = 60.0
    max_retries: int = 2
    toolsets: tuple[str, ...] = ()


async def _body(request: Request) -> ChatRequest:
    """The parsed body, read with a byte cap (413) before any JSON is parsed.

    Only ``application/json``: a body type a page of another site can send without a CORS
    preflight (none, ``text/plain``, forms) never reaches the server's provider key.
    """
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "send the request body as application/json")
    data = await read_limited(request, MAX_BODY_BYTES)
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    try:
        return ChatRequest.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc) from None


def _provider_failure(exc: ProviderError) -> Response:
    status = PROVIDER_STATUS.get(exc.kind, 502)
    response = envelope(status, str(exc))
    if exc.retry_after is not None:
        response.headers["retry-after"] = f"{exc.retry_after:g}"
    return response


async def _streamed(
    answer: Callable[[EventSink], Awaitable[dict[str, Any]]], emit: EventSink
) -> None:
    """Run the chat with its events to ``emit``; its end is one ``answer`` or ``error`` event."""
    try:
        result = await answer(emit)
    except ProviderError as exc:
        status, message = PROVIDER_STATUS.get(exc.kind, 502), str(exc)
    except IterationLimitReached as exc:
        status, message = 422, str(exc)
    except ChachamlError as exc:
        status, message = status_of(exc), str(exc)
    except Exception:
        log.exception("chat stream failed")
        status, message = 500, "the chat failed on the server; see its log"
    else:
        await emit("answer", result)
        return
    error = json.loads(bytes(envelope(status, message).body))
    await emit("error", error)


class ChatRoute(Route):
    """``POST /api/chat``, carrying the server's chat options for the Chat page to read."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]], opts: ChatOptions):
        super().__init__("/api/chat", endpoint, methods=["POST"])
        self.options = opts


def chat_options(routes: Sequence[BaseRoute]) -> ChatOptions:
    """The chat options an app was built with (the defaults if it has no chat route)."""
    found = (r.options for r in routes if isinstance(r, ChatRoute))
    return next(found, ChatOptions())


def chat_routes(
    store: Store, artifacts: ArtifactStore | None = None, options: ChatOptions | None = None
) -> list[Route]:
    """The ``/api/chat`` route over a read-only MCP server of ``store``."""
    opts = options or ChatOptions()

    @functools.cache
    def server() -> MCPServer:
        """Built for the first question (~4 ms): most apps never get one."""
        return build_mcp(store, artifacts=artifacts, toolsets=opts.toolsets, read_only=True)

    async def chat(request: Request) -> Response:
        """Answer a question with the model and the read-only tools (JSON, or events)."""
        require(request, "read")  # the access layer: a token in team mode, same-origin in local
        body = await _body(request)
        api_key = request.headers.get(KEY_HEADER) or None
        try:  # before anything is streamed: a missing key is a plain 401 either way
            connection(
                body.provider,
                api_key=api_key,
                model=body.model,
                base_url=None,
                timeout=opts.timeout,
                max_retries=opts.max_retries,
                settings=opts.settings,
            )
        except MissingApiKey:
            raise ApiError(
                401,
                f"no {body.provider} API key: send it in the X-Chat-Api-Key header"
                " (this server has none configured)",
            ) from None

        async def answer(on_event: EventSink | None = None) -> dict[str, Any]:
            result = await aask(
                body.question,
                server=server(),
                provider=body.provider,
                api_key=api_key,
                model=body.model,
                history=body.history,
                max_iterations=body.max_iterations,
                timeout=opts.timeout,
                max_retries=opts.max_retries,
                settings=opts.settings,
                on_event=on_event,
            )
            return {**result.model_dump(mode="json"), "answer_html": answer_html(result.answer)}

        if wants_stream(request):
            return EventStream(lambda emit: _streamed(answer, emit))
        try:
            return JSONResponse(await answer())
        except ProviderError as exc:
            return _provider_failure(exc)
        except IterationLimitReached as exc:
            raise ApiError(422, str(exc)) from None

    return [ChatRoute(chat, opts)]
