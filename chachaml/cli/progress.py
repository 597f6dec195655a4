"""Progress of long commands (store and artifact copies), drawn by ``rich`` on a terminal.

The copies report ``(label, done, total)`` through a callback; :class:`Progress` is that
callback. On a terminal it draws one bar per label with rich (a maintained library: rates,
ETAs and redraws that survive resizing, which a hand-written carriage-return line did not); when
stderr is not a terminal (CI, a pipe, a log file) it prints nothing, so logs stay clean.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, Any


class Progress:
    """A ``(label, done, total)`` callback drawing bars on stderr while the block runs."""

    def __init__(self, stream: IO[str] | None = None, *, force: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._stream.isatty() if force is None else force
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bars

            console = Console(file=self._stream, force_terminal=True)
            columns = (
                TextColumn("{task.description:<8}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            self._bars = Bars(*columns, console=console, transient=False)
            self._bars.start()
        return self

    def __call__(self, label: str, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` items of ``label`` are copied."""
        if self._bars is None:
            return
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._bars.add_task(label, total=total)
        self._bars.update(task, completed=done, total=total)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
