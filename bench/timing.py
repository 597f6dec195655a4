"""Clocks and memory: medians, percentiles, a process's peak RSS, a timed step on stderr."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def warm_up(calls: int, most: int) -> int:
    """Untimed calls before ``calls`` timed ones: ``most``, fewer when few calls are timed."""
    return min(most, calls)


async def time_async(call: Callable[[], Awaitable[object]], calls: int) -> list[float]:
    """Milliseconds per ``await call()``, after warm-up calls."""
    for _ in range(warm_up(calls, 3)):
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of the samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median_ms(call: Callable[[], object], repeats: int, budget_s: float = math.inf) -> float:
    """Median wall time of ``call`` in ms, after a warm-up call; fewer calls past the budget."""
    call()
    deadline = time.perf_counter() + budget_s
    times: list[float] = []
    while len(times) < repeats and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (10^6 bytes); Linux only.

    Read from ``VmHWM`` in ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` would also
    count the peak of the parent process a subprocess was forked from.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM line in /proc/self/status")


def step(label: str, fn: Callable[[], T]) -> T:
    """Run one part, reporting it and its duration on stderr (the table goes to stdout)."""
    print(f"  {label} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = fn()
    print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return result
