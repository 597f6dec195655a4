"""What can go wrong in a chat, in terms a person can act on.

``ChatError`` is the root (a :class:`~chachaml.errors.ChachamlError`):

- ``MissingApiKey``: no key was given and the provider's environment variable is unset.
- ``ProviderError``: the provider refused or failed the request; ``kind`` says how
  (``auth``, ``rate_limit``, ``overloaded``, ``timeout``, ``connection``, ``bad_request``,
  ``server``), ``status`` is its HTTP status when there was one and ``retry_after`` the
  seconds it asked to wait. Its message is scrubbed of anything key-shaped when it is made
  (:func:`scrub_secrets`): providers echo keys in error text, and the message reaches the
  caller of ``POST /api/chat`` and the terminal of ``chachaml chat``.
- ``IterationLimitReached``: the model was still calling tools after ``max_iterations``
  replies; ``tool_calls`` holds what it did so far.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from chachaml.errors import ChachamlError

if TYPE_CHECKING:
    from chachaml.chat.models import ToolCall

ErrorKind = Literal[
    "auth", "rate_limit", "overloaded", "timeout", "connection", "bad_request", "server"
]


REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
_KEY_SHAPED = re.compile(
    r"\bsk-[A-Za-z0-9_*\-]{6,}"  # OpenAI and Anthropic keys: sk-..., sk-proj-..., sk-ant-...
    r"|\b[0-9A-Fa-f]{24,}\b"  # long hex runs
    r"|(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}"  # long base64 runs
)
# base64url / JWT-style runs: only when they look random (upper, lower and digits), so that
# model names such as claude-sonnet-4-5-20250929 survive
_URLSAFE = re.compile(r"[A-Za-z0-9_\-.]{24,}")
_MIXED = (re.compile("[A-Z]"), re.compile("[a-z]"), re.compile("[0-9]"))


def _random_looking(match: re.Match[str]) -> str:
    run = match.group(0)
    return REDACTED if all(p.search(run) for p in _MIXED) else run


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets and anything key-shaped replaced by ``[redacted]``.

    Key-shaped: ``sk-...`` keys, whatever follows ``Bearer``, and runs of 24+ hex, base64 or
    random-looking base64url characters.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _KEY_SHAPED.sub(REDACTED, text)
    return _URLSAFE.sub(_random_looking, text)


class ChatError(ChachamlError):
    """Base class of chat errors."""


class MissingApiKey(ChatError):
    """No API key for the chosen provider."""


class ProviderError(ChatError):
    """The model provider refused or failed a request; the message never holds a key."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        retry_after: float | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        super().__init__(scrub_secrets(message, secrets))
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class IterationLimitReached(ChatError):
    """The model kept calling tools past the iteration cap."""

    def __init__(self, message: str, tool_calls: Sequence[ToolCall]) -> None:
        super().__init__(message)
        self.tool_calls = list(tool_calls)
