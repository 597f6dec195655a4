"""How ``chachaml chat`` shows an answer: on the terminal as the model writes it.

The printer is the chat loop's event sink, so the CLI streams through the providers'
streaming APIs exactly as the web chat does (``text`` events, then ``tool_call`` events as
each call returns). Text a model writes before asking for tools stays on screen, its line
ended when the tool call comes back. An answer that arrived without its text streamed is
printed whole at the end, and a chat that fails part-way leaves the cursor at the start of
a line, so the error on stderr reads cleanly.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from chachaml.chat.models import ChatAnswer

RESULT_CHARS = 120


class AnswerPrinter:
    """An ``EventSink`` writing a streamed chat's text to ``out`` piece by piece."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._reply: list[str] = []  # the text of the reply being streamed
        self._open_line = False  # something written since the last newline

    async def __call__(self, event: str, data: dict[str, Any]) -> None:
        """Write a ``text`` piece at once; a ``tool_call`` ends the reply that asked for it."""
        if event == "text":
            self._write(str(data["text"]))
            self._reply.append(str(data["text"]))
        elif event == "tool_call":
            self.end_line()
            self._reply = []

    def _write(self, text: str) -> None:
        if text:
            self._out.write(text)
            self._out.flush()  # a pipe or a redirected stdout buffers otherwise
            self._open_line = not text.endswith("\n")

    def end_line(self) -> None:
        """Finish the line in progress, if any (before an error, a summary or a new reply)."""
        if self._open_line:
            self._write("\n")

    def finish(self, answer: str) -> None:
        """End the answer: print it whole unless exactly it was streamed."""
        if "".join(self._reply) != answer:
            self.end_line()
            self._write(answer)
        self.end_line()


def print_tool_calls(answer: ChatAnswer, out: TextIO) -> None:
    """The tool calls behind an answer, one line each, after a blank line."""
    if answer.tool_calls:
        out.write(f"\n{len(answer.tool_calls)} tool calls ({answer.provider} {answer.model}):\n")
    for call in answer.tool_calls:
        flag = " (error)" if call.is_error else ""
        arguments = json.dumps(call.arguments)
        out.write(f"  {call.name}({arguments}){flag} -> {call.result[:RESULT_CHARS]}\n")
