"""The million-run benchmark at a tiny size, so that it cannot rot: a real bulk-seeded store."""

from __future__ import annotations

import random
from pathlib import Path

import anyio

from bench import scale_runs
from bench.runner import Context
from bench.seed import Catalogue, run_id, run_values
from chachaml.records.runs import BestRun, Run, RunQuery
from chachaml.store import open_store

RUNS = 120


def test_bench_scale_runs_times_every_figure_on_a_small_store(tmp_path: Path) -> None:
    figures = scale_runs.measure(RUNS, 2, ("sqlite",), Context(tmp_path, Catalogue(tmp_path)))
    by_name = {f.name.removesuffix(f", {RUNS} runs, SQLite"): f for f in figures}
    assert set(by_name) == {
        "best_run p50", "search_runs threshold p50", *(f"{p} p50" for p in scale_runs.PAGES),
        "MCP noop (the floor) p50", "MCP canned_listing p50", "MCP list_runs p50",
        "MCP list_runs / floor", "MCP best_run p50", "MCP best_run / floor",
    }  # fmt: skip
    assert all(0 < f.value < 10_000 and f.unit in ("ms", "x floor") for f in figures)
    floor = by_name["MCP noop (the floor) p50"].value
    listing, ratio = by_name["MCP list_runs p50"], by_name["MCP list_runs / floor"]
    assert listing.reference == floor and listing.target is None
    assert ratio.value == listing.value / floor and ratio.met is (ratio.value <= 1.5)
    assert (ratio.reference, ratio.reference_name) == (1.9, "before")
    query = by_name["best_run p50"]
    assert query.target is not None and query.met is (query.value <= 25.0)
    assert (tmp_path / f"scale-runs-{RUNS}.db").exists()  # kept for the next invocation


def test_bulk_seeded_runs_carry_their_params_tags_metrics_and_experiment(tmp_path: Path) -> None:
    db, seconds = scale_runs.sqlite_store(tmp_path, 60)
    assert seconds > 0 and scale_runs.sqlite_store(tmp_path, 60) == (db, 0.0)  # reused

    async def read() -> tuple[int, int, Run]:
        store = await open_store(f"sqlite:///{db}")
        try:
            run = await store.get_run(run_id(57))
            counted = await store.count_runs(RunQuery())
            in_one = await store.count_runs(RunQuery(experiment="exp-7"))
        finally:
            await store.close()
        return counted, in_one, run

    counted, in_one, run = anyio.run(read)
    expected = run_values(random.Random(57))
    assert (counted, in_one) == (60, 2)  # runs 7 and 57 of 50 experiments
    assert run.experiment == "exp-7" and run.status in ("completed", "failed")
    assert run.params == expected.params
    assert run.tags == scale_runs.tags_of(57)
    assert run.metrics == expected.metrics
    best, above = scale_runs.best_accuracy(60)
    assert above == [] or above[0] == best


def test_bulk_seeding_writes_the_same_runs_on_every_backend(store_url: str) -> None:
    assert scale_runs.seed_url(store_url, 60) > 0

    async def read() -> tuple[int, list[str], BestRun | None]:
        store = await open_store(store_url)
        try:
            counted = await store.count_runs(RunQuery())
            found = await store.query_runs(RunQuery(experiment="exp-7", limit=None))
            best = await store.best_run(RunQuery(order_by_metric="accuracy", limit=1))
        finally:
            await store.close()
        return counted, [r.id for r in found], best

    counted, in_one, best = anyio.run(read)
    assert counted == 60 and in_one == [run_id(7), run_id(57)]  # newest first
    assert best is not None and best.run.id == scale_runs.best_accuracy(60)[0]
    assert best.run.tags == scale_runs.tags_of(int(best.run.id, 16))
