"""The tracking benchmark's own functions at a tiny size, so that the benchmark cannot rot."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_tracking
import run as bench_run


def test_logging_reports_positive_figures_and_stores_every_point(tmp_path: Path) -> None:
    result = bench_tracking.bench_logging(tmp_path, 1_000, repeats=1)
    assert result.points == 1_000
    assert result.caller_us > 0
    assert result.points_per_s > 0


def test_queries_find_the_best_run_among_api_made_and_seeded_runs(tmp_path: Path) -> None:
    result = bench_tracking.bench_runs_and_queries(tmp_path, 10, [50, 200], repeats=2)
    assert result.runs_per_s > 0
    assert [q.runs for q in result.queries] == [50, 200]
    assert all(q.best_run_ms > 0 and q.search_runs_ms > 0 for q in result.queries)


def test_time_queries_refuses_a_wrong_best_run(tmp_path: Path) -> None:
    board = bench_tracking.Leaderboard()
    with bench_tracking.opened(tmp_path, "wrong") as client:
        bench_tracking.create_runs(client, 3, random.Random(0), board)
        board.add("not-a-stored-run", 2.0)
        try:
            bench_tracking.time_queries(client, board, repeats=1)
        except RuntimeError as exc:
            assert "not-a-stored-run" in str(exc)
        else:
            raise AssertionError("a wrong best run went unnoticed")


def test_seeded_runs_read_like_api_made_runs(tmp_path: Path) -> None:
    board = bench_tracking.Leaderboard()
    rng = random.Random(0)
    with bench_tracking.opened(tmp_path, "alike") as client:
        bench_tracking.create_runs(client, 1, rng, board)
        (made,) = board.accuracy
        bench_tracking.seed_runs(bench_tracking.store_path(client), 1, rng, board)
        (seeded,) = set(board.accuracy) - {made}
        a, b = client.get_run(made), client.get_run(seeded)
    assert (a.experiment, a.status, a.created_by) == (b.experiment, b.status, b.created_by)
    assert a.params.keys() == b.params.keys()
    assert type(a.params["lr"]) is type(b.params["lr"]) is float
    for key, summary in a.metric_summaries.items():
        other = b.metric_summaries[key]
        assert (summary.step, summary.count) == (other.step, other.count) == (0, 1)
    assert b.metric_summaries["accuracy"].last == board.accuracy[seeded]


def test_memory_is_measured_in_a_child_process() -> None:
    result = bench_tracking.bench_rss(1_000)
    assert result.points == 1_000
    assert 0 < result.peak_rss_mb < 1_000


def test_the_table_judges_figures_against_the_targets(tmp_path: Path) -> None:
    results = bench_run.Results(
        logging=bench_tracking.bench_logging(tmp_path, 1_000, repeats=1),
        runs=bench_tracking.bench_runs_and_queries(tmp_path, 5, [20], repeats=1),
    )
    rows = bench_run.build_rows(results)
    by_figure = {r.figure.split(" (")[0]: r for r in rows}
    best = by_figure["best_run ms"]
    assert best.chachaml is not None and best.chachaml > 0
    assert best.passed is (best.chachaml <= 5.0)  # judged against the target
    assert by_figure["ingest points/s"].mlflow is None
    text = bench_run.render(rows, ["a note"])
    assert "best_run ms (20 runs)" in text
    assert "* a note" in text
