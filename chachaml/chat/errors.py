"""What can go wrong in a chat, in terms a person can act on.

``ChatError`` is the root (a :class:`~chachaml.errors.ChachamlError`):

- ``MissingApiKey``: no key was given and the provider's environment variable is unset.
- ``ProviderError``: the provider refused or failed the request; ``kind`` says how
  (``auth``, ``rate_limit``, ``overloaded``, ``timeout``, ``connection``, ``bad_request``,
  ``server``), ``status`` is its HTTP status when there was one and ``retry_after`` the
  seconds it asked to wait.
- ``IterationLimitReached``: the model was still calling tools after ``max_iterations``
  replies; ``tool_calls`` holds what it did so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from chachaml.errors import ChachamlError

if TYPE_CHECKING:
    from chachaml.chat.models import ToolCall

ErrorKind = Literal[
    "auth", "rate_limit", "overloaded", "timeout", "connection", "bad_request", "server"
]


class ChatError(ChachamlError):
    """Base class of chat errors."""


class MissingApiKey(ChatError):
    """No API key for the chosen provider."""


class ProviderError(ChatError):
    """The model provider refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class IterationLimitReached(ChatError):
    """The model kept calling tools past the iteration cap."""

    def __init__(self, message: str, tool_calls: Sequence[ToolCall]) -> None:
        super().__init__(message)
        self.tool_calls = list(tool_calls)
