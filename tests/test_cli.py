"""The command line: demo, runs, show, best, experiments; errors exit non-zero with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chachaml.cli import main


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store", f"sqlite:///{tmp_path / 'cli.db'}", "--artifacts", str(tmp_path / "a")]


def test_demo_then_queries(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*store_args, "demo", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "run 2/2" in out and "logreg-lr0.03" in out
    assert main([*store_args, "runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}
    assert main([*store_args, "show", runs[0]["id"][:12]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["params"]["epochs"] == 30 and shown["artifacts"][0]["name"] == "weights.json"
    assert main([*store_args, "best", "accuracy", "-e", "demo"]) == 0
    assert "accuracy=" in capsys.readouterr().out
    assert main([*store_args, "experiments"]) == 0
    assert "demo" in capsys.readouterr().out


def test_errors_are_reported_not_raised(
    store_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, "show", "0" * 32]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([*store_args, "best", "nothing"]) == 1
    assert main(["--store", "oracle://x", "runs"]) == 2
    assert "unsupported store URL" in capsys.readouterr().err


def test_version_and_help_say_what_there_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip().startswith("chachaml ")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for words in ("metrics, artifacts, registry, pipelines, alerts", "default: 8080", "team mode"):
        assert words in shown, words
