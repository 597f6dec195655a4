"""The seam between the tool loop and a model provider.

An adapter turns the provider-neutral pieces of :mod:`chachaml.chat.models` into one
provider's wire format and back. The loop only ever sees :class:`Conversation`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from chachaml.chat.errors import ProviderError
from chachaml.chat.models import Message, Provider, TextSink, ToolDef, ToolOutcome, Turn


class Conversation(Protocol):
    """One conversation with a model, holding its messages in the provider's format.

    ``reply`` sends everything so far (system prompt, history, question, tool results) with
    the tool definitions and returns the model's next turn (through the provider's streaming
    API when ``on_text`` is given, which then gets the text as it arrives); it raises
    :class:`~chachaml.chat.errors.ProviderError` when the provider refuses or fails.
    ``add_results`` appends the model's turn and the outcome of each of its tool requests,
    in the order requested, before the next ``reply``.
    """

    async def reply(self, on_text: TextSink | None = None) -> Turn:
        """The model's next turn; streamed, with each piece of text to ``on_text``, if given."""
        ...

    def add_results(self, turn: Turn, outcomes: Sequence[ToolOutcome]) -> None:
        """Record a turn that asked for tools, and what the tools answered."""
        ...

    async def close(self) -> None:
        """Release the HTTP client."""
        ...


@dataclass(frozen=True)
class Connection:
    """How to reach a provider: key, model, optional endpoint, timeout and retries."""

    provider: Provider
    model: str
    api_key: str = field(repr=False)
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 2


def open_conversation(
    conn: Connection,
    system: str,
    history: Sequence[Message],
    question: str,
    tools: Sequence[ToolDef],
) -> Conversation:
    """A conversation with the provider ``conn`` names (its SDK is imported here)."""
    if conn.provider == "anthropic":
        from chachaml.chat.providers.anthropic import AnthropicConversation

        return AnthropicConversation(conn, system, history, question, tools)
    from chachaml.chat.providers.openai import OpenAIConversation

    return OpenAIConversation(conn, system, history, question, tools)


LABELS: dict[Provider, str] = {"anthropic": "Anthropic", "openai": "OpenAI"}
MAX_DETAIL_CHARS = 500


def _detail(body: object) -> str:
    """The provider's own error text, cut short (it is scrubbed with the rest of the message)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:MAX_DETAIL_CHARS]
        if isinstance(body.get("message"), str):
            return str(body["message"])[:MAX_DETAIL_CHARS]
    return ""


def _seconds(raw: str | None) -> float | None:
    try:
        return None if raw is None else max(0.0, float(raw))
    except ValueError:
        return None


def status_error(
    conn: Connection, status: int, body: object, retry_after: str | None
) -> ProviderError:
    """A clear :class:`ProviderError` for an HTTP error status from the provider.

    The provider's text is relayed, without the key in use or anything else key-shaped.
    """
    label, detail = LABELS[conn.provider], _detail(body)
    said = f": {detail}" if detail else ""
    secrets = (conn.api_key,)
    if status in (401, 403):
        return ProviderError(
            f"{label} rejected the API key (HTTP {status}){said}. Check the key you passed"
            f" or {conn.provider.upper()}_API_KEY.",
            kind="auth",
            status=status,
            secrets=secrets,
        )
    if status == 429:
        wait = _seconds(retry_after)
        hint = f"; retry after {wait:g} s" if wait is not None else "; try again later"
        return ProviderError(
            f"{label} rate limit reached (HTTP 429){said}{hint}.",
            kind="rate_limit",
            status=status,
            retry_after=wait,
            secrets=secrets,
        )
    if status in (503, 529):
        return ProviderError(
            f"{label} is overloaded (HTTP {status}){said}; try again in a moment.",
            kind="overloaded",
            status=status,
            secrets=secrets,
        )
    if status >= 500:
        return ProviderError(
            f"{label} failed (HTTP {status}){said}.", kind="server", status=status, secrets=secrets
        )
    return ProviderError(
        f"{label} refused the request (HTTP {status}){said}.",
        kind="bad_request",
        status=status,
        secrets=secrets,
    )


def timeout_error(conn: Connection) -> ProviderError:
    """The provider did not answer in time (after the SDK's retries)."""
    return ProviderError(
        f"{LABELS[conn.provider]} did not answer within {conn.timeout:g} s"
        f" ({conn.max_retries} retries).",
        kind="timeout",
    )


def connection_error(conn: Connection) -> ProviderError:
    """The provider could not be reached at all."""
    where = conn.base_url or "its default address"
    return ProviderError(
        f"could not reach {LABELS[conn.provider]} at {where}.",
        kind="connection",
        secrets=(conn.api_key,),
    )


@contextmanager
def provider_errors(conn: Connection, sdk: ModuleType) -> Iterator[None]:
    """Raise what the provider SDK call in the block fails with as a :class:`ProviderError`.

    ``sdk`` is the ``anthropic`` or ``openai`` module: both raise ``APIStatusError`` for an
    HTTP error status (once their own retries are spent), ``APITimeoutError`` and
    ``APIConnectionError``. An error sent inside a stream is an ``APIStatusError`` of the
    stream's 200 (Anthropic) or a bare ``APIError`` (OpenAI); its error type says what
    status it stands for.
    """
    try:
        yield
    except sdk.APIStatusError as exc:
        retry_after = exc.response.headers.get("retry-after")
        status = exc.status_code
        if status < 400:  # an error event inside a stream that had begun with 200
            status = STREAM_ERROR_STATUS.get(_error_type(exc.body), 500)
        raise status_error(conn, status, exc.body, retry_after) from None
    except sdk.APITimeoutError:
        raise timeout_error(conn) from None
    except sdk.APIConnectionError:
        raise connection_error(conn) from None
    except sdk.APIError as exc:  # OpenAI: an error chunk inside a stream
        status = STREAM_ERROR_STATUS.get(_error_type(exc.body), 500)
        raise status_error(conn, status, exc.body, None) from None


# What an error event in the middle of a stream stands for, by its error type.
STREAM_ERROR_STATUS = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "authentication_error": 401,
    "invalid_request_error": 400,
}


def _error_type(body: object) -> str:
    """The ``type`` of a provider's error body (``{"error": {"type"}}`` or ``{"type"}``)."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    kind = inner.get("type") if isinstance(inner, dict) else None
    return kind if isinstance(kind, str) else ""
