"""``chachaml pipeline run module:attr``: the steps shown as they go, the exit status."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.client.pipelines.display import StepBoard
from chachaml.client.pipelines.pipeline import Pipeline, Step, StepContext, pipelines
from tests.conftest import make_settings


def explode(ctx: StepContext) -> None:
    raise ValueError("bad batch")


nightly = Pipeline(
    "nightly",
    [Step("extract", lambda c: [1, 2]), Step("load", lambda c: len(c.prev_result))],
)
broken = Pipeline("broken", [Step("first", explode), Step("second", print)])


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store", f"sqlite:///{tmp_path / 'cli.db'}", "--artifacts", str(tmp_path / "a")]


def test_pipeline_run_shows_each_step_and_stores_the_pipeline(
    store_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, "pipeline", "run", f"{__name__}:nightly"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "pipeline 'nightly': 2 steps"
    assert [line.split()[:3] for line in out[1:5]] == [
        [">", "extract", "running"],
        ["+", "extract", "completed"],
        [">", "load", "running"],
        ["+", "load", "completed"],
    ]
    assert out[5].startswith("pipeline 'nightly' completed in ")
    client = Client(store_args[1], store_args[3], settings=make_settings())
    try:
        (info,) = pipelines(client=client)
        assert (info.name, info.status, info.step_counts) == (
            "nightly",
            "completed",
            {"completed": 2},
        )
        assert info.id in out[5]
    finally:
        client.close()


def test_a_failed_pipeline_exits_1_naming_the_step(
    store_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, "pipeline", "run", f"{__name__}:broken"]) == 1
    captured = capsys.readouterr()
    assert "- second" in captured.out and "skipped" in captured.out
    assert "step 'first'" in captured.err and "ValueError: bad batch" in captured.err


def test_targets_that_are_not_pipelines_are_refused(
    store_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, "pipeline", "run", f"{__name__}:explode"]) == 2
    assert "is a function, not a chachaml Pipeline" in capsys.readouterr().err
    assert main([*store_args, "pipeline", "run", "no_such_module_xyz:flow"]) == 2
    assert "cannot import 'no_such_module_xyz:flow'" in capsys.readouterr().err
    assert main([*store_args, "pipeline", "run", "nocolon"]) == 2
    assert "expected module:attr" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_board_redraws_in_place() -> None:
    out = Terminal()
    board = StepBoard(["a", "bb"], out, live=out.isatty())
    board.draw()
    board.update("a", "running")
    board.update("a", "completed")
    frames = out.getvalue().split("\x1b[2A")
    assert len(frames) == 3  # first drawing, then two redraws over it
    last = [line.replace("\x1b[2K", "") for line in frames[-1].splitlines()]
    assert last[0].startswith("+ a   completed") and last[0].endswith("s")
    assert last[1] == ". bb  pending"
