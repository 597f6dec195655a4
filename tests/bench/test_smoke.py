"""The benchmark package at tiny sizes, so that it cannot rot: real stores, real figures."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bench import bench_mlflow_compat, http_ingest, mcp_http, mcp_stdio, postgres, tracking
from bench.figures import Figure, render
from bench.processes import chachaml_serve
from bench.runner import Context
from bench.seed import Catalogue, Leaderboard, run_id, seed, status
from bench.targets import TARGETS, query_target
from chachaml.records.runs import RunQuery
from chachaml.store import open_store


def context(tmp_path: Path) -> Context:
    return Context(tmp_path, Catalogue(tmp_path))


def test_logging_reports_positive_figures_and_stores_every_point(tmp_path: Path) -> None:
    result = tracking.bench_logging(tmp_path, 1_000, repeats=1)
    assert result.points == 1_000
    assert 0 < result.caller_us < 10_000
    assert result.points_per_s > 1_000


def test_seeded_runs_read_like_api_made_runs(tmp_path: Path) -> None:
    with tracking.opened(tmp_path / "alike.db") as client:
        board = Leaderboard()
        tracking.create_runs(client, 1, board)
        (made,) = board.accuracy
        seeded = seed(f"sqlite:///{tmp_path / 'alike.db'}", 3)
        a, b = client.get_run(made), client.get_run(run_id(0))
    assert (a.status, a.created_by) == (b.status, b.created_by) == ("completed", "bench")
    assert a.params.keys() == b.params.keys()
    assert type(a.params["lr"]) is type(b.params["lr"]) is float
    for key, summary in a.metric_summaries.items():
        other = b.metric_summaries[key]
        assert (summary.step, summary.count) == (other.step, other.count) == (0, 1)
    assert b.metric_summaries["accuracy"].last == seeded.accuracy[run_id(0)]
    assert b.ended_at is not None and b.ended_at < a.started_at


def test_seeded_statuses_spread_over_every_experiment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    seed(url, 80)

    async def statuses() -> set[tuple[str, str]]:
        store = await open_store(url)
        try:
            runs = await store.query_runs(RunQuery(limit=None))
        finally:
            await store.close()
        return {(r.experiment, r.status) for r in runs}

    found = anyio.run(statuses)
    assert {s for _, s in found} == {"completed", "failed"} == {status(i) for i in range(80)}
    assert ("exp-3", "failed") in found and ("exp-3", "completed") in found


def test_the_catalogue_seeds_each_size_once_growing_the_smaller(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    small = catalogue.copy(30, tmp_path / "a.db")
    again = catalogue.copy(30, tmp_path / "b.db")
    large = catalogue.copy(50, tmp_path / "c.db")
    assert catalogue.seeded == 50  # 30, then 20 more on a copy of the 30
    assert len(small) == len(again) == 30 and len(large) == 50
    assert small.accuracy.items() <= large.accuracy.items()

    async def count(db: Path) -> int:
        store = await open_store(f"sqlite:///{db}")
        try:
            return await store.count_runs(RunQuery())
        finally:
            await store.close()

    assert [anyio.run(count, tmp_path / n) for n in ("a.db", "b.db", "c.db")] == [30, 30, 50]


def test_a_kept_catalogue_is_reused_without_seeding_again(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    first = Catalogue(seeds).copy(40, tmp_path / "a.db")
    later = Catalogue(seeds)
    assert later.copy(40, tmp_path / "b.db").accuracy == first.accuracy
    assert later.seeded == 0
    assert sorted(p.name for p in seeds.iterdir()) == ["seeded-40.db"]


def test_queries_find_the_best_run_among_api_made_and_seeded_runs(tmp_path: Path) -> None:
    result = tracking.bench_runs_and_queries(context(tmp_path), 10, (50, 200), repeats=2)
    assert 0 < result.runs_per_s < 100_000
    assert [q.runs for q in result.queries] == [60, 200]  # the API-made runs join the first
    assert all(0 < q.best_run_ms < 1_000 and 0 < q.search_runs_ms < 1_000 for q in result.queries)


def test_time_queries_refuses_a_wrong_best_run(tmp_path: Path) -> None:
    board = Leaderboard()
    with tracking.opened(tmp_path / "wrong.db") as client:
        tracking.create_runs(client, 3, board)
        board.add("not-a-stored-run", 2.0)
        with pytest.raises(RuntimeError, match="not-a-stored-run"):
            tracking.time_queries(client, board, repeats=1)


def test_memory_is_measured_in_a_child_process() -> None:
    result = tracking.bench_rss(1_000)
    assert result.points == 1_000
    assert 0 < result.peak_rss_mb < 1_000


def test_targets_judge_limits_and_ratios_to_a_same_run_reference() -> None:
    ingest = TARGETS["ingest to flush"]  # >= 1M points/s and >= 50x MLflow
    assert ingest.met(2e6, 10_000) and ingest.met(2e6, None)
    assert not ingest.met(2e6, 100_000)  # only 20x the reference
    assert not ingest.met(5e5, 1_000)
    team = TARGETS["MCP over HTTP, team mode"]  # <= 1.05x local
    assert team.met(1.04, 1.0) and not team.met(1.1, 1.0)
    assert query_target(10_000).limit == 5.0 and query_target(10_001).limit == 25.0
    assert ingest.describe() == ">= 1,000,000 points/s, >= 50x MLflow"


def test_the_table_shows_each_figure_beside_its_reference_and_verdict() -> None:
    figures = [
        Figure("t", "ingest", 1.5e6, "points/s", "higher", TARGETS["ingest to flush"], 1e4,
               "MLflow"),
        Figure("t", "log_metric", 0.5, "µs", "lower", TARGETS["log_metric caller cost"], 3500,
               "MLflow"),
        Figure("t", "runs", 300, "runs/s", "higher"),
        Figure("t", "best_run", 30.0, "ms", "lower", query_target(10_000)),
    ]  # fmt: skip
    lines = render(figures).splitlines()
    assert "150x MLflow" in lines[2] and lines[2].endswith("met")
    assert "1/7,000x MLflow" in lines[3]
    assert lines[4].endswith("-")
    assert lines[5].endswith("NOT MET")
    assert lines[-1] == "targets met: 2 of 3"


def seeded(tmp_path: Path, runs: int) -> str:
    db = tmp_path / "seeded.db"
    Catalogue(tmp_path).copy(runs, db)
    return f"sqlite:///{db}"


@pytest.mark.slow
def test_mcp_stdio_times_every_tool_over_raw_json_rpc(tmp_path: Path) -> None:
    timings = anyio.run(mcp_stdio.raw_calls, seeded(tmp_path, 30), 4)
    assert [len(samples) for samples in timings] == [4] * len(mcp_stdio.CASES)
    assert all(0 < t < 60 for samples in timings for t in samples)


@pytest.mark.slow
def test_mcp_http_times_calls_that_pass_the_access_layer(tmp_path: Path) -> None:
    tokens, headers = mcp_http.MODES["team"]
    with chachaml_serve(tmp_path, seeded(tmp_path, 30), tokens) as url:
        times = mcp_http.time_calls(url, headers, 3)
    assert {name: len(samples) for name, samples in times.items()} == {
        name: 3 for name, _ in mcp_http.CASES
    }
    assert all(0 < t < 60 for samples in times.values() for t in samples)


@pytest.mark.slow
def test_http_ingest_counts_every_point_it_pushes(tmp_path: Path) -> None:
    size = http_ingest.Size(points=2_000, batch=500, clients=2)
    figures = {f.name: f for f in http_ingest.measure(size, context(tmp_path))}
    assert set(figures) == {
        f"{fmt}, {n}, 500 per request"
        for fmt in http_ingest.FORMATS
        for n in ("1 client", "2 clients")
    }
    assert all(f.value > 100 and f.unit == "points/s" for f in figures.values())
    assert figures["packed, 1 client, 500 per request"].met is not None


@pytest.mark.postgres
def test_postgres_beside_sqlite_on_the_same_seeded_runs(tmp_path: Path) -> None:
    figures = postgres.measure(postgres.Size(points=2_000, query_sizes=(40,), repeats=2),
                               context(tmp_path))  # fmt: skip
    by_name = {f.name: f for f in figures}
    ingest = by_name["ingest of 2,000 points to flush"]
    assert ingest.value > 0 and ingest.reference is not None and ingest.reference > 0
    for name in ("best_run, 40 runs", "search_runs, 40 runs"):
        f = by_name[name]
        assert f.reference_name == "SQLite" and f.ratio is not None and f.ratio > 0
        assert f.met is not None


def test_the_tracking_benchmark_judges_each_figure_by_its_seeded_size(tmp_path: Path) -> None:
    size = tracking.Size(2_000, 1, 5, (20,), 2, 2_000, 5, 100, 1.0, 1.0, 10, 1.0)
    ctx = context(tmp_path)
    figures = {f.name: f for f in tracking.measure(size, ctx)}
    assert figures["log_metric, caller cost"].target == TARGETS["log_metric caller cost"]
    best = figures["best_run, 25 runs"]  # 20 seeded and the 5 made through the API
    assert best.target == query_target(20) and 0 < best.value < 1_000
    assert figures["peak RSS logging 2,000 points"].value > 0
    if not tracking.has_mlflow():
        assert best.reference is None
        assert any("MLflow not measured" in note for note in ctx.notes)


@pytest.mark.slow
def test_mlflow_compat_runs_the_same_client_against_both_servers(tmp_path: Path) -> None:
    size = bench_mlflow_compat.Size(points=2_000, runs=10, search_runs=50, page=20, repeats=2,
                                    budget_s=60.0, workers=1)  # fmt: skip
    figures = {f.name: f for f in bench_mlflow_compat.measure(size, context(tmp_path))}
    assert set(figures) == {
        "log_batch, 1,000 points per call", "log_batch client floor: a server doing no work",
        "log-batch served (bodies pre-encoded)",
        "runs created, 5 params + 3 metrics", "search_runs by a metric, 50 runs",
        "get_metric_history, 2,000 points",
    }  # fmt: skip
    for f in figures.values():  # each measured on both servers, judged against MLflow's
        assert f.value > 0 and f.reference is not None and f.reference > 0, f
        assert f.reference_name == "MLflow"
        assert (f.met is None) == (f.name == "log_batch client floor: a server doing no work")


def test_the_pipelines_benchmark_times_both_executors(tmp_path: Path) -> None:
    from bench import bench_pipelines

    tiny = bench_pipelines.Size(steps=2, trials=4)
    step_overhead, fan_out = bench_pipelines.measure(tiny, context(tmp_path))
    assert step_overhead.value > 0 and step_overhead.reference_name == "local"
    assert fan_out.value > 0 and fan_out.reference is not None and fan_out.reference > 0
    assert "pipeline fan-out" in TARGETS and fan_out.target is TARGETS["pipeline fan-out"]
