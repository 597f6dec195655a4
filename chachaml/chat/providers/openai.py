"""The OpenAI adapter: the Chat Completions API with ``tool_calls``.

Tools go in ``tools`` as functions; the model's calls come back as ``tool_calls`` and their
answers go out as ``role: tool`` messages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallParam,
    ChatCompletionToolParam,
)

from chachaml.chat.models import Message, TextSink, ToolDef, ToolOutcome, ToolRequest, Turn
from chachaml.chat.providers.conversation import Connection, provider_errors
from chachaml.tls import client_context


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_unparsed": raw}
    return parsed if isinstance(parsed, dict) else {"_unparsed": raw}


class OpenAIConversation:
    """A provider ``Conversation`` over ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        conn: Connection,
        system: str,
        history: Sequence[Message],
        question: str,
        tools: Sequence[ToolDef],
    ) -> None:
        self._conn = conn
        self._client = openai.AsyncOpenAI(
            api_key=conn.api_key,
            base_url=conn.base_url,
            timeout=conn.timeout,
            max_retries=conn.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(verify=client_context()),
        )
        self._tools: list[ChatCompletionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in tools
        ]
        self._messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}]
        for m in history:
            if m.role == "user":
                self._messages.append({"role": "user", "content": m.content})
            else:
                self._messages.append({"role": "assistant", "content": m.content})
        self._messages.append({"role": "user", "content": question})

    async def reply(self, on_text: TextSink | None = None) -> Turn:
        """Send the conversation; the model's text and ``tool_calls``.

        With ``on_text``, with ``stream=True``: content deltas go to ``on_text`` as they
        arrive, and tool calls are put together from their indexed deltas.
        """
        if on_text is not None:
            return await self._streamed(on_text)
        with provider_errors(self._conn, openai):
            completion = await self._client.chat.completions.create(
                model=self._conn.model, messages=self._messages, tools=self._tools
            )
        message = completion.choices[0].message
        requests = [
            ToolRequest(id=c.id, name=c.function.name, arguments=_arguments(c.function.arguments))
            for c in message.tool_calls or []
            if c.type == "function"
        ]
        return Turn(text=message.content or "", requests=requests)

    async def _streamed(self, on_text: TextSink) -> Turn:
        text: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]
        with provider_errors(self._conn, openai):
            stream = await self._client.chat.completions.create(
                model=self._conn.model, messages=self._messages, tools=self._tools, stream=True
            )
            async for chunk in stream:
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        await on_text(delta.content)
                    for part in delta.tool_calls or []:
                        call = calls.setdefault(part.index, ["", "", ""])
                        call[0] = part.id or call[0]
                        if part.function is not None:
                            call[1] += part.function.name or ""
                            call[2] += part.function.arguments or ""
        requests = [
            ToolRequest(id=call_id, name=name, arguments=_arguments(raw))
            for call_id, name, raw in (calls[i] for i in sorted(calls))
        ]
        return Turn(text="".join(text), requests=requests)

    def add_results(self, turn: Turn, outcomes: Sequence[ToolOutcome]) -> None:
        """Append the assistant's ``tool_calls`` message and one ``tool`` message per call."""
        calls: list[ChatCompletionMessageToolCallParam] = [
            {
                "id": r.id,
                "type": "function",
                "function": {"name": r.name, "arguments": json.dumps(r.arguments)},
            }
            for r in turn.requests
        ]
        self._messages.append(
            {"role": "assistant", "content": turn.text or None, "tool_calls": calls}
        )
        for o in outcomes:
            text = f"error: {o.text}" if o.is_error else o.text
            self._messages.append({"role": "tool", "tool_call_id": o.request.id, "content": text})

    async def close(self) -> None:
        """Close the SDK's HTTP client."""
        await self._client.close()
