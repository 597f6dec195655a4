"""The pipelines benchmark: ``python -m bench.bench_pipelines [--quick|--full] [--steps N]
[--trials N]``.

Per-step overhead: a chain of ``steps`` no-op steps, wall time per step, each step a
tracked run recorded where it ran. Fan-out: one step mapping a no-op trial over ``trials``
elements, trials per second, each trial a tracked run. Both on the local executor (the
reference) and on a Dask ``LocalCluster`` of two single-threaded worker processes, in one
run, against PostgreSQL (a store every worker shares).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench import postgres
from bench.figures import Figure
from bench.runner import Benchmark, Context, main_one
from bench.targets import TARGETS
from bench.timing import step
from bench.tracking import make_client
from chachaml.client.client import Client
from chachaml.client.pipelines.attempt import StepContext
from chachaml.client.pipelines.executor import Executor, LocalExecutor
from chachaml.client.pipelines.pipeline import Step, run_pipeline

NAME = "pipelines"


@dataclass(frozen=True)
class Size:
    """No-op steps in the timed chain, no-op trials in the timed fan-out."""

    steps: int
    trials: int


SIZES = {
    "quick": Size(steps=5, trials=20),
    "default": Size(steps=50, trials=200),
    "full": Size(steps=200, trials=1_000),
}


def noop(ctx: StepContext) -> None:
    """A step that does nothing: what is timed is the pipeline's own cost."""


def elements(n: int, ctx: StepContext) -> list[int]:
    return list(range(n))


def trial(ctx: StepContext) -> int:
    return int(ctx.item)


@dataclass(frozen=True)
class Timing:
    """Per-step milliseconds of the chain, and trials per second of the fan-out."""

    step_ms: float
    trials_per_s: float


def time_executor(client: Client, executor: Executor, size: Size) -> Timing:
    """Warm the executor up with one step, then time the chain and the fan-out."""
    run_pipeline("warm-up", [noop], client=client, executor=executor)
    chain = [Step(f"noop-{i}", noop) for i in range(size.steps)]
    began = time.perf_counter()
    run_pipeline("chain", chain, client=client, executor=executor)
    step_ms = 1000 * (time.perf_counter() - began) / size.steps
    sweep = [
        Step("elements", partial(elements, size.trials)),
        Step("trial", trial, map_over="elements"),
    ]
    began = time.perf_counter()
    result = run_pipeline("fan-out", sweep, client=client, executor=executor, max_parallel=8)
    seconds = time.perf_counter() - began
    assert len(result.results["trial"]) == size.trials
    return Timing(step_ms, size.trials / seconds)


def measure(size: Size, context: Context) -> list[Figure]:
    """Local first (the reference), then the same pipelines on a Dask LocalCluster."""
    from distributed import LocalCluster

    from chachaml.client.pipelines.dask import DaskExecutor

    with postgres.postgres_schema() as (url, _):
        client = make_client(url, context.workdir / "artifacts")
        try:
            local = step("local executor", lambda: time_executor(client, LocalExecutor(), size))
            with (
                LocalCluster(  # type: ignore[no-untyped-call]
                    processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"
                ) as cluster,
                DaskExecutor(cluster.scheduler_address) as dask,
            ):
                on_dask = step("Dask LocalCluster", lambda: time_executor(client, dask, size))
        finally:
            client.close()
    context.notes.append(
        "pipelines: Dask on a LocalCluster of 2 worker processes, 1 thread each;"
        " local fan-out runs 8 elements at a time"
    )
    return [
        Figure(NAME, f"no-op step overhead, chain of {size.steps} (Dask)", on_dask.step_ms,
               "ms", "lower", TARGETS["pipeline step overhead"], local.step_ms, "local"),
        Figure(NAME, f"fan-out of {size.trials} no-op trials (Dask)", on_dask.trials_per_s,
               "trials/s", "higher", TARGETS["pipeline fan-out"], local.trials_per_s, "local"),
    ]  # fmt: skip


def unavailable() -> str | None:
    """Why the benchmark cannot run here (no PostgreSQL, no Dask), or ``None``."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return 'no Dask: pip install "chachaml[dask]"'
    return postgres.unavailable()


BENCHMARK: Benchmark[Any] = Benchmark(
    NAME, "per-step overhead and fan-out, local vs Dask", SIZES, measure, unavailable
)

if __name__ == "__main__":
    raise SystemExit(main_one(BENCHMARK))
