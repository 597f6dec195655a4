"""``chachaml pipeline run module:attr``: run a pipeline definition with a live view of its steps.

On a terminal the steps are one line each, redrawn in place as their status changes (with
the time each has taken, and a fan-out step's elements done of all); elsewhere (a log file,
CI) each change is printed as a line, a fan-out's progress at every tenth. With
``--executor dask://...`` the Dask dashboard's link comes first and, at the end, the worker
each step ran on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chachaml.client.pipelines.attempt import STEP_TAG, WORKER_TAG
from chachaml.client.pipelines.executor import Executor, resolve_executor
from chachaml.client.pipelines.pipeline import Pipeline, PipelineFailed
from chachaml.client.pipelines.plan import import_target
from chachaml.errors import ChachamlError, InvalidInput
from chachaml.records.pipelines import PIPELINE_TAG, PipelineDetail
from chachaml.tools import pipelines as ops

if TYPE_CHECKING:
    from chachaml.client.client import Client

MAX_WORKERS = 4  # workers named per step; a fan-out's may be many

MARKS = {
    "pending": ".",
    "running": ">",
    "completed": "+",
    "failed": "x",
    "skipped": "-",
    "killed": "!",
}


class StepBoard:
    """The steps of one pipeline run and their status, drawn to ``out``."""

    def __init__(self, steps: list[str], out: TextIO, *, live: bool) -> None:
        self.status = dict.fromkeys(steps, "pending")
        self._started: dict[str, float] = {}
        self._took: dict[str, float] = {}
        self._out = out
        self.live = live
        self._drawn = False
        self._width = max(len(s) for s in steps)
        self._counts: dict[str, tuple[int, int, int]] = {}

    def _line(self, step: str) -> str:
        status = self.status[step]
        if step in self._took:
            took = f"{self._took[step]:.1f}s"
        elif step in self._started:
            took = f"{time.monotonic() - self._started[step]:.1f}s"
        else:
            took = ""
        counts = ""
        if step in self._counts:
            done, failed, total = self._counts[step]
            counts = f" {done}/{total}" + (f" ({failed} failed)" if failed else "")
        return f"{MARKS[status]} {step:<{self._width}}  {status:<9} {took}{counts}".rstrip()

    def draw(self) -> None:
        """Draw every step (in place of the previous drawing on a terminal)."""
        if self.live and self._drawn:
            self._out.write(f"\x1b[{len(self.status)}A")
        for step in self.status:
            self._out.write(("\x1b[2K" if self.live else "") + self._line(step) + "\n")
        self._out.flush()
        self._drawn = True

    def update(self, step: str, status: str) -> None:
        """Record a step's new status and show it."""
        now = time.monotonic()
        if status == "running":
            self._started.setdefault(step, now)
        elif step in self._started:
            self._took[step] = now - self._started[step]
        self.status[step] = status
        if self.live:
            self.draw()
        else:
            self._out.write(self._line(step) + "\n")
            self._out.flush()

    def progress(self, step: str, done: int, failed: int, total: int) -> None:
        """Record a fan-out step's elements ended; show it (in a log: every tenth)."""
        self._counts[step] = (done, failed, total)
        if self.live:
            self.draw()
        elif (done + failed) % max(1, total // 10) == 0 or done + failed == total:
            self._out.write(self._line(step) + "\n")
            self._out.flush()


def print_workers(detail: PipelineDetail, client: Client, out: TextIO) -> None:
    """Where each step ran (every attempt's and fan-out element's worker) on a cluster."""
    by_step: dict[str, set[str]] = {}
    with contextlib.suppress(ChachamlError):
        for run in client.search_runs(tags={PIPELINE_TAG: detail.id}, limit=None):
            name, worker = run.tags.get(STEP_TAG), run.tags.get(WORKER_TAG)
            if name is not None and worker is not None:
                by_step.setdefault(name, set()).add(str(worker))
    width = max((len(s.name) for s in detail.steps if s.name in by_step), default=0)
    for step in detail.steps:
        workers = sorted(by_step.get(step.name, ()))
        if workers:
            shown = ", ".join(workers[:MAX_WORKERS]) + (
                " ..." if len(workers) > MAX_WORKERS else ""
            )
            out.write(f"  {step.name:<{width}}  ran on {shown}\n")


def load_definition(target: str) -> Pipeline:
    """The :class:`Pipeline` that ``module:attr`` names (modules in the current folder too)."""
    if ":" not in target:
        raise InvalidInput(f"expected module:attr naming a Pipeline, got {target!r}")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    found = import_target(target)
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target} is a {type(found).__name__}, not a chachaml Pipeline")
    return found


def run_with_board(target: str, client: Client, out: TextIO, executor: str | None = None) -> int:
    """Run the pipeline ``target`` names on ``client``; 0 if it completed, 1 if it failed.

    ``executor``: ``"local"`` (the default) or ``"dask://host:port"``.
    """
    definition = load_definition(target)
    chosen = resolve_executor(executor)
    try:
        return _run(definition, client, out, chosen)
    finally:
        shutdown = getattr(chosen, "shutdown", None)
        if shutdown is not None:
            shutdown()


def _run(definition: Pipeline, client: Client, out: TextIO, executor: Executor) -> int:
    board = StepBoard([s.name for s in definition.steps], out, live=out.isatty())
    out.write(f"pipeline {definition.name!r}: {len(definition.steps)} steps\n")
    connect = getattr(executor, "connect", None)
    if connect is not None:
        connect()
    if executor.dashboard:
        out.write(f"dask dashboard: {executor.dashboard}\n")
    if board.live:
        board.draw()
    try:
        result = definition.run(
            on_update=board.update,
            client=client,
            executor=executor,
            on_progress=board.progress,
        )
    except PipelineFailed as exc:
        if connect is not None:
            with contextlib.suppress(ChachamlError):
                print_workers(client.op(ops.get_pipeline, exc.pipeline_id), client, out)
        print(f"chachaml: {exc}", file=sys.stderr)
        return 1
    took = result.detail.duration_seconds or 0.0
    out.write(f"pipeline {definition.name!r} completed in {took:.1f}s (id {result.id})\n")
    if connect is not None:
        print_workers(result.detail, client, out)
    return 0
