"""``POST /api/chat``: ask a question about the store, answered by a model through the MCP tools.

The body is ``{"question", "provider", "model", "history", "max_iterations"}``; the answer is
a :class:`~chachaml.chat.ChatAnswer` (answer, iterations, every tool call). The provider key
comes from the ``X-Chat-Api-Key`` header, else from the server's environment
(``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``); it is used for the one request and never stored
or logged. The provider endpoint is chosen by the server only, so a caller cannot send a key
elsewhere. The tools are read-only; callers need read access to the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chachaml.chat.errors import IterationLimitReached, MissingApiKey, ProviderError
from chachaml.chat.loop import aask
from chachaml.chat.models import Message, Provider
from chachaml.server.api_errors import ApiError, envelope, from_validation
from chachaml.server.auth import Auth
from chachaml.server.mcp_app import build_mcp
from chachaml.settings import Settings

if TYPE_CHECKING:
    from chachaml.store.artifacts import ArtifactStore
    from chachaml.store.protocol import Store

KEY_HEADER = "x-chat-api-key"
PROVIDER_STATUS = {"rate_limit": 429, "timeout": 504}


class ChatRequest(BaseModel):
    """The body of ``POST /api/chat``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=10_000)
    provider: Provider = "anthropic"
    model: str | None = Field(default=None, min_length=1, max_length=200)
    history: list[Message] = Field(default_factory=list, max_length=100)
    max_iterations: int = Field(default=10, ge=1, le=25)


@dataclass(frozen=True)
class ChatOptions:
    """Server-side chat settings: fallback keys and endpoints, timeout, retries, toolsets."""

    settings: Settings = field(default_factory=Settings)
    timeout: float = 60.0
    max_retries: int = 2
    toolsets: tuple[str, ...] = ()


async def _body(request: Request) -> ChatRequest:
    try:
        raw = await request.json()
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


def chat_routes(
    store: Store, artifacts: ArtifactStore | None = None, options: ChatOptions | None = None
) -> list[Route]:
    """The ``/api/chat`` route over a read-only MCP server of ``store``."""
    opts = options or ChatOptions()
    server = build_mcp(store, artifacts=artifacts, toolsets=opts.toolsets, read_only=True)

    async def chat(request: Request) -> Response:
        """Answer a question with the model and the read-only tools."""
        auth: Auth = getattr(request.app.state, "auth", Auth())
        await auth.authorize(request, store, "read")
        body = await _body(request)
        try:
            answer = await aask(
                body.question,
                server=server,
                provider=body.provider,
                api_key=request.headers.get(KEY_HEADER) or None,
                model=body.model,
                history=body.history,
                max_iterations=body.max_iterations,
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
        except ProviderError as exc:
            return _provider_failure(exc)
        except IterationLimitReached as exc:
            raise ApiError(422, str(exc)) from None
        return JSONResponse(answer.model_dump(mode="json"))

    return [Route("/api/chat", chat, methods=["POST"])]
