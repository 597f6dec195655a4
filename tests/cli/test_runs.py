"""The command line: demo, runs, show, best, experiments; errors exit non-zero with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chachaml.cli import main


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store", f"sqlite:///{tmp_path / 'cli.db'}", "--artifacts", str(tmp_path / "a")]


def test_demo_then_queries(
    store_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, "demo", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "run 2/2" in out and "logreg-lr0.03" in out
    # each run's line shows its values as the table does (0.9075, not 0.907)
    lines = out.splitlines()
    for line in (line for line in lines if line.startswith("run ")):
        _, _, run_id, name, *values = line.split()
        row = next(row.split() for row in lines if row.startswith(run_id + " "))
        assert name in row and all(v.split("=")[1] in row for v in values), (line, row)
    assert "accuracy=0.9075" in out
    # then where the runs went, and the next commands, pointed at that same store
    assert f"Stored in {tmp_path / 'cli.db'}, artifacts in {tmp_path / 'a'}/" in out
    store = f"--store sqlite:///{tmp_path / 'cli.db'} --artifacts {tmp_path / 'a'}/"
    for command in (
        f"chachaml serve {store}",
        "http://127.0.0.1:8080",
        f"chachaml mcp config --client claude-code {store}",
        f"chachaml best accuracy -e demo {store}",
    ):
        assert command in out, command
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


def test_demo_in_a_fresh_folder_names_the_default_store_and_plain_next_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CHACHAML_STORE", "CHACHAML_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["demo", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    stored = (
        f"Stored in {tmp_path / 'chachaml.db'}, artifacts in {tmp_path / 'chachaml-artifacts'}/"
    )
    assert stored in out
    assert (tmp_path / "chachaml.db").is_file()
    steps = [line.split("#")[0].strip() for line in out.splitlines()[-3:]]
    assert steps == [
        "chachaml serve",
        "chachaml mcp config --client claude-code",
        "chachaml best accuracy -e demo",
    ]


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
