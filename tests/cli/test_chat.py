"""``chachaml chat "question"`` and the README's chat example, against a fake provider."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chachaml.cli import main
from tests.support.fake_providers import Call, Fail, FakeProvider, Say, fake_provider
from tests.support.mcp_seed import IRIS, seeded_store


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    url = anyio.run(seeded_store, tmp_path)
    monkeypatch.setenv("CHACHAML_STORE", url)
    monkeypatch.setenv("CHACHAML_ARTIFACTS", str(tmp_path / "artifacts"))
    with fake_provider() as (served, base):
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-cli-anthropic")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{base}/v1")
        yield served


def best_iris(fake: FakeProvider) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: "Best: " + seen.results[0].content),
    )


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


def test_the_readme_chat_example_runs(fake: FakeProvider, tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Chat with your ML data", 1)[1]
    example = re.findall(r"```py\n(.*?)```", section, flags=re.S)[0]
    best_iris(fake)
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert IRIS in result.stdout and "best_run {'metric': 'acc'" in result.stdout
