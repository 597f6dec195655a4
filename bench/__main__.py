"""``python -m bench [NAME ...] [--quick|--full] [--json PATH]``: every benchmark, one table.

Each figure is printed beside its target (met / NOT MET) and, where one exists, beside a
reference measured in the same run (MLflow, SQLite, the MCP no-op floor, local mode).
The default sizes finish in a few minutes on a 2-core machine; ``--full`` reproduces the
README's figures (100,000 runs: much longer, most of it seeding).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from bench import (
    bench_mlflow_compat,
    bench_pipelines,
    bench_scale,
    brokers,
    events,
    http_ingest,
    mcp_http,
    mcp_stdio,
    postgres,
    tracking,
    ui,
)
from bench.runner import Benchmark, chosen_size, run, size_parser

# Cheapest first; the seeded-store users share one seeding per size.
BENCHMARKS: dict[str, Benchmark[Any]] = {
    b.name: b
    for b in (
        tracking.BENCHMARK,
        postgres.BENCHMARK,
        mcp_stdio.BENCHMARK,
        mcp_http.BENCHMARK,
        ui.BENCHMARK,
        http_ingest.BENCHMARK,
        events.BENCHMARK,
        bench_mlflow_compat.BENCHMARK,
        brokers.BENCHMARK,
        bench_pipelines.BENCHMARK,
        bench_scale.BENCHMARK,
    )
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the named benchmarks (all by default); exit 1 if a target is not met."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    names = ", ".join(BENCHMARKS)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {names}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    size_parser(parser)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; there are {', '.join(BENCHMARKS)}")
    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:<12} {b.summary}")
        return 0
    size = chosen_size(args)
    chosen = [BENCHMARKS[n] for n in args.names or BENCHMARKS]
    figures = run([(b, b.sizes[size]) for b in chosen], args.json, args.seeds)
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
