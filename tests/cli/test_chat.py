"""``chachaml chat "question"`` against a fake provider.

The README's chat example, run as a process, is in :mod:`tests.e2e.test_readme_examples`.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chachaml.cli import main
from chachaml.cli.chat import AnswerPrinter
from tests.support.chat_cli import best_iris, chat_environment
from tests.support.fake_providers import Call, Cut, Fail, FakeProvider, Say
from tests.support.mcp_seed import IRIS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    yield from chat_environment(monkeypatch, tmp_path)


def test_chat_prints_the_answer_then_the_tool_calls(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    best_iris(fake)
    assert main(["chat", "Which iris run is best?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Best: ") and IRIS in out
    assert "1 tool calls (anthropic" in out and 'best_run({"metric": "acc"' in out
    assert fake.seen[0].key == "sk-cli-anthropic"


def test_chat_json_with_openai_and_a_model(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    best_iris(fake)
    assert main(["chat", "best?", "--provider", "openai", "--model", "m-2", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["provider"], body["model"], body["iterations"]) == ("openai", "m-2", 2)
    assert body["tool_calls"][0]["name"] == "best_run" and IRIS in body["answer"]
    assert fake.seen[0].key == "sk-cli-openai"


def test_chat_offers_write_tools_only_when_allowed(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.play(Say(lambda seen: "ok"), Say(lambda seen: "ok"))
    assert main(["chat", "hi"]) == 0
    assert main(["chat", "hi", "--allow-writes", "--toolsets", "metrics"]) == 0
    read_only, writable = (set(s.tools) for s in fake.seen)
    assert "add_tag" not in read_only and "get_metric_history" not in read_only
    assert {"add_tag", "get_metric_history"} <= writable


def test_a_provider_error_is_one_line_on_stderr(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.play(Fail(401, "invalid x-api-key"))
    assert main(["chat", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chachaml: Anthropic rejected the API key (HTTP 401)")
    assert "sk-cli" not in err and len(fake.seen) == 1  # a bad key is not retried


class Terminal(io.StringIO):
    """A stdout that notes, at each write, how many text pieces the fake had streamed."""

    def __init__(self, fake: FakeProvider, shown: threading.Event) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []
        self._fake, self._shown = fake, shown

    def write(self, text: str) -> int:
        self.writes.append((text, len(self._fake.sent)))
        if text.strip():
            self._shown.set()  # the fake sends the rest of its stream once this is seen
        return super().write(text)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_chat_prints_the_answer_as_the_provider_streams_it(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    shown = threading.Event()
    terminal = Terminal(fake, shown)
    monkeypatch.setattr(sys, "stdout", terminal)
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: f"The best iris run is {IRIS}, by accuracy.", hold=shown),
    )
    assert main(["chat", "Which iris run is best?", "--provider", provider]) == 0
    assert all(seen.streamed for seen in fake.seen)  # the providers' streaming APIs
    pieces = ["The", " best", " iris", " run", " is", f" {IRIS},", " by", " accuracy."]
    assert fake.sent == pieces
    first, streamed_so_far = terminal.writes[0]
    assert first == "The" and streamed_so_far == 1  # on screen before the rest was sent
    assert [text for text, _ in terminal.writes[: len(pieces)]] == pieces
    out = terminal.getvalue()
    assert out.startswith(f"The best iris run is {IRIS}, by accuracy.\n\n1 tool calls (")
    assert out.count(IRIS) == 2  # the answer once (not again at the end), and the tool call


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_text_written_before_a_tool_call_keeps_a_line_of_its_own(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    fake.play(Call([("list_experiments", {})], text="Looking it up."), Say(lambda seen: "Done."))
    assert main(["chat", "hi", "--provider", provider]) == 0
    assert capsys.readouterr().out.startswith("Looking it up.\nDone.\n\n1 tool calls")


@pytest.mark.parametrize("flag", ["--no-stream", "--json"])
def test_without_streaming_the_answer_comes_whole(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    best_iris(fake)
    assert main(["chat", "Which iris run is best?", flag]) == 0
    assert not any(seen.streamed for seen in fake.seen) and fake.sent == []
    assert IRIS in capsys.readouterr().out


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_stream_cut_short_ends_its_line_before_the_error(
    fake: FakeProvider, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    fake.play(Cut("Half an answer", 529, "Overloaded"))
    assert main(["chat", "hi", "--provider", provider]) == 2
    captured = capsys.readouterr()
    assert captured.out == "Half an answer\n"
    assert "overloaded (HTTP 529)" in captured.err


@pytest.mark.anyio
async def test_an_answer_that_did_not_stream_is_printed_whole_once() -> None:
    out = io.StringIO()
    printer = AnswerPrinter(out)
    await printer("text", {"text": "Let me look."})
    await printer("tool_call", {"name": "list_runs"})
    printer.finish("The answer, never streamed.")
    assert out.getvalue() == "Let me look.\nThe answer, never streamed.\n"
    streamed = io.StringIO()
    printer = AnswerPrinter(streamed)
    for piece in ("All", " there.\n"):
        await printer("text", {"text": piece})
    printer.finish("All there.\n")
    assert streamed.getvalue() == "All there.\n"
