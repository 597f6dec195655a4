"""The Anthropic adapter: the Messages API with ``tool_use`` and ``tool_result`` blocks.

Tools go in ``tools``; the model's calls come back as ``tool_use`` blocks and their answers
go out as ``tool_result`` blocks in the next user message.
"""

from __future__ import annotations

from collections.abc import Sequence

import anthropic
from anthropic.types import (
    ContentBlockParam,
    MessageParam,
    ToolParam,
    ToolResultBlockParam,
)
from anthropic.types import Message as AnthropicMessage

from chachaml.chat.models import Message, TextSink, ToolDef, ToolOutcome, ToolRequest, Turn
from chachaml.chat.providers.conversation import Connection, provider_errors
from chachaml.tls import client_context

MAX_TOKENS = 4096


class AnthropicConversation:
    """A provider ``Conversation`` over ``anthropic.AsyncAnthropic``."""

    def __init__(
        self,
        conn: Connection,
        system: str,
        history: Sequence[Message],
        question: str,
        tools: Sequence[ToolDef],
    ) -> None:
        self._conn = conn
        self._client = anthropic.AsyncAnthropic(
            api_key=conn.api_key,
            base_url=conn.base_url,
            timeout=conn.timeout,
            max_retries=conn.max_retries,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=client_context()),
        )
        self._system = system
        self._tools: list[ToolParam] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in tools
        ]
        self._messages: list[MessageParam] = []
        for m in history:
            if m.role == "user":
                self._messages.append({"role": "user", "content": m.content})
            else:
                self._messages.append({"role": "assistant", "content": m.content})
        self._messages.append({"role": "user", "content": question})

    async def reply(self, on_text: TextSink | None = None) -> Turn:
        """Send the conversation; the model's text and ``tool_use`` requests.

        With ``on_text``, through ``messages.stream``: each text delta goes to ``on_text``
        as it arrives, and the turn is read from the stream's final message.
        """
        with provider_errors(self._conn, anthropic):
            if on_text is None:
                message: AnthropicMessage = await self._client.messages.create(
                    model=self._conn.model,
                    max_tokens=MAX_TOKENS,
                    system=self._system,
                    messages=self._messages,
                    tools=self._tools,
                )
            else:
                async with self._client.messages.stream(
                    model=self._conn.model,
                    max_tokens=MAX_TOKENS,
                    system=self._system,
                    messages=self._messages,
                    tools=self._tools,
                ) as stream:
                    async for piece in stream.text_stream:
                        await on_text(piece)
                    message = await stream.get_final_message()
        text = "".join(b.text for b in message.content if b.type == "text")
        requests = [
            ToolRequest(id=b.id, name=b.name, arguments=dict(b.input))
            for b in message.content
            if b.type == "tool_use" and isinstance(b.input, dict)
        ]
        return Turn(text=text, requests=requests)

    def add_results(self, turn: Turn, outcomes: Sequence[ToolOutcome]) -> None:
        """Append the assistant's ``tool_use`` turn and a user turn of ``tool_result`` blocks."""
        blocks: list[ContentBlockParam] = []
        if turn.text:
            blocks.append({"type": "text", "text": turn.text})
        blocks.extend(
            {"type": "tool_use", "id": r.id, "name": r.name, "input": r.arguments}
            for r in turn.requests
        )
        results: list[ToolResultBlockParam] = [
            {
                "type": "tool_result",
                "tool_use_id": o.request.id,
                "content": o.text,
                "is_error": o.is_error,
            }
            for o in outcomes
        ]
        self._messages.append({"role": "assistant", "content": blocks})
        self._messages.append({"role": "user", "content": results})

    async def close(self) -> None:
        """Close the SDK's HTTP client."""
        await self._client.close()
