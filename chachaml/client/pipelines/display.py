"""``chachaml pipeline run module:attr``: run a pipeline definition with a live view of its steps.

On a terminal the steps are one line each, redrawn in place as their status changes (with
the time each has taken); elsewhere (a log file, CI) each change is printed as a line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chachaml.client.pipelines.pipeline import Pipeline, PipelineFailed, import_target
from chachaml.errors import InvalidInput

if TYPE_CHECKING:
    from chachaml.client.client import Client

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

    def _line(self, step: str) -> str:
        status = self.status[step]
        if step in self._took:
            took = f"{self._took[step]:.1f}s"
        elif step in self._started:
            took = f"{time.monotonic() - self._started[step]:.1f}s"
        else:
            took = ""
        return f"{MARKS[status]} {step:<{self._width}}  {status:<9} {took}".rstrip()

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


def run_with_board(target: str, client: Client, out: TextIO) -> int:
    """Run the pipeline ``target`` names on ``client``; 0 if it completed, 1 if it failed."""
    definition = load_definition(target)
    board = StepBoard([s.name for s in definition.steps], out, live=out.isatty())
    out.write(f"pipeline {definition.name!r}: {len(definition.steps)} steps\n")
    if board.live:
        board.draw()
    try:
        result = definition.run(on_update=board.update, client=client)
    except PipelineFailed as exc:
        print(f"chachaml: {exc}", file=sys.stderr)
        return 1
    took = result.detail.duration_seconds or 0.0
    out.write(f"pipeline {definition.name!r} completed in {took:.1f}s (id {result.id})\n")
    return 0
