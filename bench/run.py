"""The tracking benchmark: ``python bench/run.py [--quick] [--parts ...] [--json PATH]``.

Measures chachaml (and MLflow on SQLite, when it is importable) and prints one table:
figure | chachaml | MLflow | ratio (how many times better chachaml is) | target | result.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import bench_tracking
from bench_tracking import LoggingResult, RssResult

if TYPE_CHECKING:
    import bench_mlflow

T = TypeVar("T")
PARTS = ("logging", "runs", "memory")


@dataclass(frozen=True)
class Sizes:
    """How much each part does; MLflow parts stop at a size or a time budget."""

    log_points: int = 1_000_000
    log_repeats: int = 3
    api_runs: int = 1_000
    query_sizes: tuple[int, ...] = (10_000, 100_000)
    query_repeats: int = 50
    rss_points: int = 10_000_000
    mlflow_calls: int = 300
    mlflow_calls_budget_s: float = 5.0
    mlflow_ingest_points: int = 1_000_000
    mlflow_ingest_budget_s: float = 240.0
    mlflow_api_runs: int = 1_000
    mlflow_runs_budget_s: float = 20.0
    mlflow_query_runs: int = 10_000
    mlflow_seed_budget_s: float = 120.0
    total_budget_s: float = 570.0  # MLflow budgets shrink to end the benchmark by then


FULL = Sizes()
QUICK = Sizes(
    log_points=100_000,
    log_repeats=1,
    api_runs=100,
    query_sizes=(1_000, 5_000),
    query_repeats=10,
    rss_points=1_000_000,
    mlflow_calls=50,
    mlflow_calls_budget_s=2.0,
    mlflow_ingest_points=20_000,
    mlflow_ingest_budget_s=10.0,
    mlflow_api_runs=50,
    mlflow_runs_budget_s=5.0,
    mlflow_query_runs=500,
    mlflow_seed_budget_s=15.0,
    total_budget_s=120.0,
)


@dataclass
class Results:
    """Everything measured; ``None`` for parts not run."""

    logging: LoggingResult | None = None
    runs: bench_tracking.RunsAndQueries | None = None
    rss: RssResult | None = None
    mlflow_calls: bench_mlflow.CallResult | None = None
    mlflow_ingest: bench_mlflow.IngestResult | None = None
    mlflow_runs: bench_mlflow.RunsAndQueries | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    """One figure of the table; ``passed`` is ``None`` when the figure has no target."""

    figure: str
    chachaml: float | None
    mlflow: float | None
    better: Literal["lower", "higher"]
    target: str
    passed: bool | None

    @property
    def ratio(self) -> float | None:
        """How many times better chachaml is than MLflow on this figure."""
        if self.chachaml is None or self.mlflow is None:
            return None
        if self.better == "lower":
            return self.mlflow / self.chachaml
        return self.chachaml / self.mlflow


def step(label: str, fn: Callable[[], T]) -> T:
    """Run one part, reporting it and its duration on stderr."""
    print(f"  {label} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = fn()
    print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return result


def measure_chachaml(workdir: Path, sizes: Sizes, parts: set[str], results: Results) -> None:
    """The chachaml figures of the selected parts."""
    print("chachaml", file=sys.stderr)
    if "logging" in parts:
        results.logging = step(
            f"log_metric x {sizes.log_points:,}, then flush (x{sizes.log_repeats})",
            lambda: bench_tracking.bench_logging(workdir, sizes.log_points, sizes.log_repeats),
        )
    if "runs" in parts:
        results.runs = step(
            f"{sizes.api_runs:,} runs, then queries at {', '.join(map(str, sizes.query_sizes))}",
            lambda: bench_tracking.bench_runs_and_queries(
                workdir, sizes.api_runs, list(sizes.query_sizes), sizes.query_repeats
            ),
        )
    if "memory" in parts:
        results.rss = step(
            f"peak RSS of a process logging {sizes.rss_points:,} points",
            lambda: bench_tracking.bench_rss(sizes.rss_points),
        )


def cut(wanted_s: float, deadline: float, reserve_s: float) -> float:
    """A part's time budget: ``wanted_s``, shortened to leave ``reserve_s`` before the deadline."""
    return max(5.0, min(wanted_s, deadline - time.perf_counter() - reserve_s))


def measure_mlflow(
    workdir: Path, sizes: Sizes, parts: set[str], deadline: float, results: Results
) -> None:
    """MLflow's equivalents of the selected parts, each bounded in time.

    Budgets shrink when the whole benchmark would otherwise run past ``deadline`` (on a busy
    machine): the ingest part leaves room for the runs part, which leaves room for queries.
    """
    print("MLflow", file=sys.stderr)
    import bench_mlflow

    if "logging" in parts:
        calls = results.mlflow_calls = step(
            f"mlflow.log_metric x {sizes.mlflow_calls:,}",
            lambda: bench_mlflow.log_metric_calls(
                workdir / "calls", sizes.mlflow_calls, sizes.mlflow_calls_budget_s
            ),
        )
        results.notes.append(f"MLflow log_metric: {calls.calls:,} calls, time per call")
    queries_s = 2 * bench_mlflow.QUERY_BUDGET_S + 10.0
    if "logging" in parts or "memory" in parts:
        later_s = sizes.mlflow_runs_budget_s + queries_s + 30.0 if "runs" in parts else 0.0
        ingest_s = cut(sizes.mlflow_ingest_budget_s, deadline, later_s)
        ingest = results.mlflow_ingest = step(
            f"log_batch of {sizes.mlflow_ingest_points:,} points in batches of"
            f" {bench_mlflow.BATCH} (budget {ingest_s:.0f} s)",
            lambda: bench_mlflow.bench_ingest(sizes.mlflow_ingest_points, ingest_s),
        )
        results.notes.append(
            f"MLflow log_batch ingest and peak RSS: {ingest.points:,} points"
            f" in {ingest.seconds:.1f} s, in a fresh process"
        )
    if "runs" in parts:
        seed_s = cut(sizes.mlflow_seed_budget_s, deadline, sizes.mlflow_runs_budget_s + queries_s)
        runs = results.mlflow_runs = step(
            f"runs (budget {sizes.mlflow_runs_budget_s:.0f} s), seeding to"
            f" {sizes.mlflow_query_runs:,} (budget {seed_s:.0f} s), queries",
            lambda: bench_mlflow.bench_runs_and_queries(
                workdir / "runs",
                sizes.mlflow_api_runs,
                sizes.mlflow_runs_budget_s,
                sizes.mlflow_query_runs,
                seed_s,
                sizes.query_repeats,
            ),
        )
        results.notes.append(f"MLflow queries: over {runs.queries.runs:,} runs")


def query_target_ms(runs: int) -> float:
    """The latency target for a query over ``runs`` runs."""
    return 5.0 if runs <= 10_000 else 25.0


def build_rows(results: Results) -> list[Row]:
    """The table's rows for whatever was measured."""
    rows: list[Row] = []
    log, mcalls, mingest = results.logging, results.mlflow_calls, results.mlflow_ingest
    if log is not None:
        rows.append(
            Row(
                "log_metric, caller µs/call",
                log.caller_us,
                mcalls.caller_us if mcalls else None,
                "lower",
                "<= 2 µs",
                log.caller_us <= 2.0,
            )
        )
        ratio = log.points_per_s / mingest.points_per_s if mingest else None
        rows.append(
            Row(
                f"ingest points/s ({log.points:,} points, to flush)",
                log.points_per_s,
                mingest.points_per_s if mingest else None,
                "higher",
                ">= 1,000,000/s, >= 50x MLflow",
                log.points_per_s >= 1e6 and (ratio is None or ratio >= 50),
            )
        )
    if results.runs is not None:
        mruns = results.mlflow_runs
        rows.append(
            Row(
                "runs/s (5 params + 3 metrics)",
                results.runs.runs_per_s,
                mruns.runs_per_s if mruns else None,
                "higher",
                "",
                None,
            )
        )
        for i, q in enumerate(results.runs.queries):
            mq = mruns.queries if mruns is not None and i == 0 else None
            target = query_target_ms(q.runs)
            for name, ours, theirs in (
                ("best_run", q.best_run_ms, mq.best_run_ms if mq else None),
                ("search_runs acc > 0.9", q.search_runs_ms, mq.search_runs_ms if mq else None),
            ):
                rows.append(
                    Row(
                        f"{name} ms ({q.runs:,} runs)",
                        ours,
                        theirs,
                        "lower",
                        f"<= {target:g} ms",
                        ours <= target,
                    )
                )
    if results.rss is not None:
        rows.append(
            Row(
                f"peak RSS MB ({results.rss.points:,} points)",
                results.rss.peak_rss_mb,
                mingest.peak_rss_mb if mingest else None,
                "lower",
                "< 200 MB",
                results.rss.peak_rss_mb < 200.0,
            )
        )
    return rows


def number(value: float | None) -> str:
    """A figure with about three significant digits, or a dash."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def render(rows: Sequence[Row], notes: Sequence[str]) -> str:
    """The results table, its notes, and the count of targets met."""
    header = ("figure", "chachaml", "MLflow", "ratio", "target", "result")
    cells = [
        (
            r.figure,
            number(r.chachaml),
            number(r.mlflow),
            "-" if r.ratio is None else f"{r.ratio:,.1f}x",
            r.target or "-",
            {True: "pass", False: "FAIL", None: "-"}[r.passed],
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        first, *rest = values
        return "  ".join(
            [first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))]
        )

    checked = [r.passed for r in rows if r.passed is not None]
    out = [line(header), "  ".join("-" * w for w in widths), *map(line, cells)]
    out += ["", *(f"* {n}" for n in notes)]
    out.append(f"targets met: {sum(checked)} of {len(checked)}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected parts, print the table, and write JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="logging: log_metric and ingest; runs: runs/s and queries; memory: peak RSS",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow even if importable")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    parts = set(args.parts)
    with_mlflow = not args.no_mlflow and importlib.util.find_spec("mlflow") is not None
    results = Results()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chachaml-bench-") as tmp:
        measure_chachaml(Path(tmp), sizes, parts, results)
        if with_mlflow:
            deadline = start + sizes.total_budget_s
            measure_mlflow(Path(tmp), sizes, parts, deadline, results)
        else:
            results.notes.append("MLflow not measured (not importable, or --no-mlflow)")
    seconds = time.perf_counter() - start
    results.notes.append(
        f"1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the"
        f" end, on {os.cpu_count()} CPUs (other work on the machine slows every figure)"
    )
    rows = build_rows(results)
    print(render(rows, results.notes))
    print(f"benchmark time: {seconds:.0f} s")
    if args.json is not None:
        document: dict[str, Any] = {
            "sizes": asdict(sizes),
            "seconds": seconds,
            "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
            "targets_met": all(r.passed is not False for r in rows),
            "results": asdict(results),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
