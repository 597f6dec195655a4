"""A loopback stand-in for the Anthropic Messages API and the OpenAI Chat Completions API.

It speaks both wire formats closely enough for the official SDKs (pointed at it through
``base_url``) and replays a script of provider-neutral steps: ask for tool calls, answer
with text built from what the client sent, fail with an HTTP status, or hang. A request
with ``"stream": true`` is answered with Server-Sent Events as each API sends them
(Anthropic's ``message_start`` ... ``message_stop``, OpenAI's ``chat.completion.chunk``
lines ending in ``[DONE]``), each text piece recorded in ``sent`` as it goes. Every request
is recorded, parsed into a :class:`Seen` that is the same for both providers, with
``streamed`` telling how it asked.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.mcp_seed import free_port
from tests.support.waiting import wait_for


@dataclass(frozen=True)
class Result:
    """A tool result as the client sent it back."""

    call_id: str
    content: str
    is_error: bool


@dataclass(frozen=True)
class Seen:
    """One request, provider-neutral: key, model, system prompt, tools, messages, results."""

    provider: str
    key: str
    model: str
    system: str
    tools: list[str]
    texts: list[tuple[str, str]]
    results: list[Result]
    streamed: bool = False


@dataclass(frozen=True)
class Call:
    """Ask for tools: each ``(name, arguments)``, after ``text`` if any."""

    calls: list[tuple[str, dict[str, Any]]]
    text: str = ""


@dataclass(frozen=True)
class Say:
    """Answer with text, made from the request; streamed a word at a time, ``pause`` apart.

    With ``hold``, a stream waits after its first word until the event is set (at most
    ``HOLD_SECONDS``): a client that shows each piece as it comes can set it on the first.
    """

    text: Callable[[Seen], str]
    pause: float = 0.0
    hold: threading.Event | None = None


@dataclass(frozen=True)
class Fail:
    """Answer with an error status (and headers)."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cut:
    """Stream ``text``, then an error event of ``status``'s type (a plain ``Fail`` unstreamed)."""

    text: str
    status: int
    message: str


@dataclass(frozen=True)
class Hang:
    """Do not answer until the server shuts down."""


Step = Call | Say | Fail | Cut | Hang
HOLD_SECONDS = 10.0
ERROR_TYPES = {
    401: "authentication_error",
    429: "rate_limit_error",
    529: "overloaded_error",
    400: "invalid_request_error",
}


def _anthropic_seen(body: dict[str, Any], headers: dict[str, str]) -> Seen:
    texts: list[tuple[str, str]] = []
    results: list[Result] = []
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            texts.append((message["role"], content))
            continue
        results = []
        for block in content:
            if block["type"] == "text":
                texts.append((message["role"], block["text"]))
            elif block["type"] == "tool_result":
                results.append(
                    Result(block["tool_use_id"], block["content"], block.get("is_error", False))
                )
    return Seen(
        provider="anthropic",
        key=headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer "),
        model=body["model"],
        system=body.get("system", ""),
        tools=[t["name"] for t in body.get("tools", [])],
        texts=texts,
        results=results,
        streamed=bool(body.get("stream")),
    )


def _openai_seen(body: dict[str, Any], headers: dict[str, str]) -> Seen:
    messages = body["messages"]
    texts = [(m["role"], m["content"]) for m in messages[1:] if m["role"] in ("user", "assistant")]
    results: list[Result] = []
    for m in messages:
        if m["role"] == "assistant":
            results = []
        elif m["role"] == "tool":
            error = m["content"].startswith("error: ")
            results.append(Result(m["tool_call_id"], m["content"], error))
    return Seen(
        provider="openai",
        key=headers.get("authorization", "").removeprefix("Bearer "),
        model=body["model"],
        system=messages[0]["content"] if messages[0]["role"] == "system" else "",
        tools=[t["function"]["name"] for t in body.get("tools", [])],
        texts=[(r, c) for r, c in texts if c],
        results=results,
        streamed=bool(body.get("stream")),
    )


def _words(text: str) -> list[str]:
    """``text`` in pieces of one word each (with the space before it), as a model streams."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def _sse(data: dict[str, Any] | str, event: str | None = None) -> str:
    line = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "") + f"data: {line}\n\n"


def _sse_response(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/event-stream")


async def _paced(
    pieces: list[str], pause: float, say: Say | None, sent: list[str]
) -> AsyncIterator[str]:
    """The text pieces of a stream as the fake sends them: paced, held, recorded."""
    for i, piece in enumerate(pieces):
        if pause:
            await anyio.sleep(pause)
        if i == 1 and say is not None and say.hold is not None:
            await anyio.to_thread.run_sync(say.hold.wait, HOLD_SECONDS)
        sent.append(piece)
        yield piece


async def _anthropic_stream(
    n: int,
    model: str,
    content: list[dict[str, Any]],
    stop: str,
    pause: float,
    say: Say | None = None,
    sent: list[str] | None = None,
) -> AsyncIterator[str]:
    message: dict[str, Any] = {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    yield _sse({"type": "message_start", "message": message}, "message_start")
    for index, block in enumerate(content):
        start: dict[str, Any]
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            pieces, kind, field_name = _words(block["text"]), "text_delta", "text"
        else:
            start = {**block, "input": {}}
            raw = json.dumps(block["input"])
            pieces = [raw[i : i + 8] for i in range(0, len(raw), 8)]
            kind, field_name = "input_json_delta", "partial_json"
        yield _sse(
            {"type": "content_block_start", "index": index, "content_block": start},
            "content_block_start",
        )
        texts: list[str] = [] if sent is None or kind != "text_delta" else sent
        async for piece in _paced(pieces, pause, say, texts):
            yield _sse(
                {"type": "content_block_delta", "index": index,
                 "delta": {"type": kind, field_name: piece}},
                "content_block_delta",
            )  # fmt: skip
        yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 10},
        },
        "message_delta",
    )
    yield _sse({"type": "message_stop"}, "message_stop")


async def _openai_stream(
    n: int,
    model: str,
    message: dict[str, Any],
    finish: str,
    pause: float,
    say: Say | None = None,
    sent: list[str] | None = None,
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        return _sse(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
                ],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    if message.get("content"):
        async for word in _paced(
            _words(message["content"]), pause, say, [] if sent is None else sent
        ):
            yield chunk({"content": word})
    for index, call in enumerate(message.get("tool_calls", [])):
        head = {"name": call["function"]["name"], "arguments": ""}
        yield chunk(
            {
                "tool_calls": [
                    {"index": index, "id": call["id"], "type": "function", "function": head}
                ]
            }
        )
        raw = call["function"]["arguments"]
        for i in range(0, len(raw), 8):
            part = {"index": index, "function": {"arguments": raw[i : i + 8]}}
            yield chunk({"tool_calls": [part]})
    yield chunk({}, finish)
    yield _sse("[DONE]")


async def _anthropic_cut(step: Cut, model: str) -> AsyncIterator[str]:
    async for line in _anthropic_stream(0, model, [{"type": "text", "text": step.text}], "", 0):
        if '"content_block_stop"' in line:
            break
        yield line
    error = {"type": ERROR_TYPES.get(step.status, "api_error"), "message": step.message}
    yield _sse({"type": "error", "error": error}, "error")


async def _openai_cut(step: Cut, model: str) -> AsyncIterator[str]:
    message = {"role": "assistant", "content": step.text}
    async for line in _openai_stream(0, model, message, "stop", 0):
        if '"finish_reason":"stop"' in line.replace(" ", ""):
            break
        yield line
    error = {"message": step.message, "type": ERROR_TYPES.get(step.status), "code": None}
    yield _sse({"error": error})


class FakeProvider:
    """The fake server's state: the script to replay and the requests seen so far."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.seen: list[Seen] = []
        self.sent: list[str] = []  # text pieces streamed, in order
        self.release = threading.Event()
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
            ]
        )

    def play(self, *steps: Step) -> None:
        """Replace the script and forget earlier requests."""
        self.script = list(steps)
        self.seen = []
        self.sent = []

    async def _next(self, seen: Seen) -> Step:
        self.seen.append(seen)
        assert self.script, f"the fake {seen.provider} got a request it has no script for"
        step = self.script.pop(0)
        if isinstance(step, Hang):
            await anyio.to_thread.run_sync(self.release.wait, 30)
        return step

    async def _anthropic(self, request: Request) -> Response:
        seen = _anthropic_seen(await request.json(), dict(request.headers))
        step = await self._next(seen)
        if isinstance(step, Cut) and seen.streamed:
            return _sse_response(_anthropic_cut(step, seen.model))
        if isinstance(step, Fail | Cut):
            error = {"type": ERROR_TYPES.get(step.status, "api_error"), "message": step.message}
            body = {"type": "error", "error": error}
            headers = step.headers if isinstance(step, Fail) else {}
            return JSONResponse(body, status_code=step.status, headers=headers)
        n = next(self._ids)
        content: list[dict[str, Any]]
        if isinstance(step, Call):
            content = [{"type": "text", "text": step.text}] if step.text else []
            content += [
                {"type": "tool_use", "id": f"toolu_{n}_{i}", "name": name, "input": args}
                for i, (name, args) in enumerate(step.calls)
            ]
            stop = "tool_use"
        else:
            assert isinstance(step, Say)
            content, stop = [{"type": "text", "text": step.text(seen)}], "end_turn"
        if seen.streamed:
            say = step if isinstance(step, Say) else None
            pause = 0.0 if say is None else say.pause
            return _sse_response(
                _anthropic_stream(n, seen.model, content, stop, pause, say, self.sent)
            )
        return JSONResponse(
            {
                "id": f"msg_{n}",
                "type": "message",
                "role": "assistant",
                "model": seen.model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 10},
            }
        )

    async def _openai(self, request: Request) -> Response:
        seen = _openai_seen(await request.json(), dict(request.headers))
        step = await self._next(seen)
        if isinstance(step, Cut) and seen.streamed:
            return _sse_response(_openai_cut(step, seen.model))
        if isinstance(step, Fail | Cut):
            error = {"message": step.message, "type": ERROR_TYPES.get(step.status), "code": None}
            headers = step.headers if isinstance(step, Fail) else {}
            return JSONResponse({"error": error}, status_code=step.status, headers=headers)
        n = next(self._ids)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(step, Call):
            message["content"] = step.text or None
            message["tool_calls"] = [
                {
                    "id": f"call_{n}_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for i, (name, args) in enumerate(step.calls)
            ]
            finish = "tool_calls"
        else:
            assert isinstance(step, Say)
            message["content"], finish = step.text(seen), "stop"
        if seen.streamed:
            say = step if isinstance(step, Say) else None
            pause = 0.0 if say is None else say.pause
            return _sse_response(
                _openai_stream(n, seen.model, message, finish, pause, say, self.sent)
            )
        return JSONResponse(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": seen.model,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )


@contextmanager
def fake_provider() -> Iterator[tuple[FakeProvider, str]]:
    """Serve a :class:`FakeProvider` on a loopback port; yields it and its base URL."""
    fake = FakeProvider()
    port = free_port()
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 10, "the fake provider to start")
    assert server.started, "the fake provider's server thread died"
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        fake.release.set()
        server.should_exit = True
        thread.join(timeout=10)
