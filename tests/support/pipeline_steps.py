"""Pipeline steps importable by Dask workers (and by a resume in another process).

Steps shipped to a cluster must be picklable, and a resume without ``steps=`` imports them
back by name: so they live in a module, not in test closures. Steps that must wait for the
test look for a flag file named after their pipeline (:func:`flag`).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from chachaml.client.pipelines.attempt import StepContext

WAIT = 60.0  # seconds a waiting step waits for its flag at most


def flag(pipeline_id: str) -> Path:
    """The file a test creates to release a waiting step of ``pipeline_id``."""
    return Path(tempfile.gettempdir()) / f"chachaml-test-flag-{pipeline_id}"


def _wait_for_flag(pipeline_id: str) -> bool:
    """Wait for the flag; whether it was there already."""
    path = flag(pipeline_id)
    if path.exists():
        return True
    deadline = time.monotonic() + WAIT
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return False


def load(ctx: StepContext) -> list[int]:
    ctx.run.log_param("source", "memory")
    return [1, 2, 3]


def double(ctx: StepContext) -> list[int]:
    ctx.run.log_metric("items", len(ctx.prev_result))
    return [x * 2 for x in ctx.prev_result]


def total(ctx: StepContext) -> dict[str, Any]:
    ctx.run.log_metric("sum", float(sum(ctx.prev_result)))
    return {"sum": sum(ctx.prev_result), "pid": os.getpid(), "me": ctx.name}


def where(ctx: StepContext) -> int:
    """Logs through ``import chachaml as ml`` (the worker's default client)."""
    import chachaml as ml

    ml.log_metric("pid", float(os.getpid()))
    return os.getpid()


def boom(ctx: StepContext) -> None:
    raise ValueError(f"boom in {ctx.name}")


def flaky(ctx: StepContext) -> int:
    """Fails on its first attempt."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return ctx.attempt


def slow(ctx: StepContext) -> None:
    time.sleep(2)


def grid(ctx: StepContext) -> list[dict[str, float]]:
    return [{"lr": i / 100} for i in range(50)]


def trial(ctx: StepContext) -> float:
    """One element of a sweep: logs its score on its own run."""
    score: float = 1.0 - ctx.item["lr"]
    ctx.run.log_param("lr", ctx.item["lr"])
    ctx.run.log_metric("score", score)
    return score


def odd_fails(ctx: StepContext) -> int:
    """Element 3 fails on its first attempt only."""
    if ctx.index == 3 and ctx.attempt == 1:
        raise RuntimeError("element 3 fails once")
    return int(ctx.index or 0)


def best(ctx: StepContext) -> dict[str, Any]:
    scores = ctx.prev_result
    return {"n": len(scores), "first": scores[0], "best": max(scores)}


def first(ctx: StepContext) -> dict[str, int]:
    return {"rows": 3}


def hold(ctx: StepContext) -> int:
    """Waits for its flag in its first attempt (to be killed meanwhile); then completes."""
    if ctx.attempt == 1:
        _wait_for_flag(ctx.pipeline_id)
    return os.getpid()


def hang(ctx: StepContext) -> int:
    """Waits for its flag and then fails; completes at once when the flag was already there
    (the resumed run)."""
    if not _wait_for_flag(ctx.pipeline_id):
        raise RuntimeError("abandoned: released after its driver died")
    return int(ctx.prev_result["rows"])


def rows(ctx: StepContext) -> int:
    return int(ctx.prev_result["rows"])


def last(ctx: StepContext) -> str:
    return "done"


def _sweep() -> Any:
    from chachaml.client.pipelines.pipeline import Pipeline, Step

    return Pipeline(
        "cli-sweep",
        [Step("grid", grid), Step("trial", trial, map_over="grid"), Step("best", best)],
    )


sweep = _sweep()  # for ``chachaml pipeline run tests.support.pipeline_steps:sweep``
