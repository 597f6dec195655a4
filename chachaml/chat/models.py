"""The shapes a chat returns, and the provider-neutral pieces adapters exchange with the loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

Provider = Literal["anthropic", "openai"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "openai")
DEFAULT_MODELS: dict[Provider, str] = {
    "anthropic": "claude-sonnet-5-5",
    "openai": "gpt-5.5",
}


# What one chat may send the provider: a bound on the key-holder's spend and on memory.
MAX_HISTORY_TURNS = 40
MAX_MESSAGE_CHARS = 20_000
MAX_CONVERSATION_CHARS = 200_000  # question and history together


class Message(BaseModel):
    """One earlier turn of the conversation, as plain text."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_MESSAGE_CHARS)


def conversation_size_error(question: str, history: Sequence[Message]) -> str | None:
    """Why ``question`` with ``history`` is too much to send, or ``None`` when it is not."""
    if len(history) > MAX_HISTORY_TURNS:
        return f"history has {len(history)} turns; at most {MAX_HISTORY_TURNS} are sent"
    total = len(question) + sum(len(m.content) for m in history)
    if total > MAX_CONVERSATION_CHARS:
        return (
            f"question and history together are {total} characters;"
            f" at most {MAX_CONVERSATION_CHARS} are sent"
        )
    return None


class ToolCall(BaseModel):
    """One tool call the model made: what it asked for and a short form of the answer."""

    name: str
    arguments: dict[str, Any]
    result: str
    is_error: bool = False


class ChatAnswer(BaseModel):
    """The model's final answer, how many replies it took, and every tool call behind it."""

    answer: str
    provider: Provider
    model: str
    iterations: int
    tool_calls: list[ToolCall]


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool as the MCP server lists it: name, description and JSON Schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """The model asks for one tool call; ``id`` pairs it with its result."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """The text a tool call produced, sent back to the model."""

    request: ToolRequest
    text: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class Turn:
    """One model reply: its text and the tool calls it asks for (none means it is done)."""

    text: str
    requests: list[ToolRequest] = field(default_factory=list)


#: Receives the model's answer text as it is produced (a streamed reply).
TextSink = Callable[[str], Awaitable[None]]
#: Receives what happens during a streamed chat: ``("text", {"text"})`` as the model
#: writes, ``("tool_call", ToolCall fields)`` as each tool call returns.
EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]
