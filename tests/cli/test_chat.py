"""``chachaml chat "question"`` against a fake provider.

The README's chat example, run as a process, is in :mod:`tests.e2e.test_readme_examples`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chachaml.cli import main
from tests.support.chat_cli import best_iris, chat_environment
from tests.support.fake_providers import Fail, FakeProvider, Say
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
