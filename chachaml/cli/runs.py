"""``chachaml runs|show|experiments|best|demo``: look at runs from a terminal."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chachaml.client.client import Client
from chachaml.records.runs import RunInfo


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Rows as aligned text columns under a header and a rule (the CLI's one table)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def fmt(value: float | None) -> str:
    """A metric value in four significant digits, as the runs table shows them."""
    return "" if value is None else f"{value:.4g}"


def run_rows(runs: Sequence[RunInfo]) -> str:
    """The runs table: short id, experiment, name, status, user, start, six metrics."""
    keys = sorted({k for r in runs for k in r.metrics})[:6]
    rows = [
        [
            r.id[:12],
            r.experiment,
            r.name,
            r.status,
            r.created_by,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            *(fmt(r.metrics.get(k)) for k in keys),
        ]
        for r in runs
    ]
    return table(rows, ["id", "experiment", "name", "status", "user", "started", *keys])


def cmd_runs(args: argparse.Namespace, client: Client) -> int:
    """List runs, newest first."""
    runs = client.runs(
        experiment=args.experiment, status=args.status, created_by=args.user, limit=args.limit
    )
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        print(run_rows(runs) if runs else "no runs yet")
    return 0


def cmd_show(args: argparse.Namespace, client: Client) -> int:
    """Show one run in full, as JSON."""
    print(client.get_run(args.run_id).model_dump_json(indent=2))  # the short id works too
    return 0


def cmd_experiments(args: argparse.Namespace, client: Client) -> int:
    """List experiments."""
    exps = client.experiments()
    rows = [
        [
            e.name,
            e.run_count,
            e.owner,
            e.last_activity and e.last_activity.isoformat(" ", "seconds"),
        ]
        for e in exps
    ]
    print(table(rows, ["experiment", "runs", "owner", "last activity"]) if exps else "none")
    return 0


def cmd_best(args: argparse.Namespace, client: Client) -> int:
    """Print the best run for a metric."""
    best = client.best_run(args.metric, args.experiment, "min" if args.min else "max")
    if best is None:
        from chachaml.tools.experiments import why_no_metric

        why = client.op(why_no_metric, args.metric, args.experiment)
        print(f"no run has logged {args.metric!r}" + (f": {why}" if why else ""))
        return 1
    print(
        f"{best.run.id}  {best.run.experiment}/{best.run.name}  {best.metric}={best.value:.6g}"
        f" (step {best.step})"
    )
    return 0


def cmd_demo(args: argparse.Namespace, client: Client) -> int:
    """Track a few small training runs, then say where they went and what to try next."""
    from chachaml.client.demo import run_demo
    from chachaml.settings import redact_url
    from chachaml.store import sqlite_path

    run_demo(client, runs=args.runs)
    print()
    cmd_runs(
        argparse.Namespace(experiment="demo", status=None, user=None, limit=20, json=False),
        client,
    )
    settings = client.settings
    path = sqlite_path(settings.store_url)
    store = redact_url(settings.store_url if path is None else f"sqlite:///{path}")
    artifacts = settings.artifact_root
    if "://" not in artifacts:
        artifacts = f"{Path(artifacts).absolute()}{os.sep}"
    # the next commands must reach the same store: name it when it was named for the demo
    where = ""
    if getattr(args, "store", None):
        where += f" --store {shlex.quote(store)}"
    if getattr(args, "artifacts", None):
        where += f" --artifacts {shlex.quote(artifacts)}"
    steps = [
        (f"chachaml serve{where}", "then open the web UI at http://127.0.0.1:8080"),
        (f"chachaml mcp config --client claude-code{where}", "connect an AI agent"),
        (f"chachaml best accuracy -e demo{where}", "the best run, from the shell"),
    ]
    width = max(len(command) for command, _ in steps)
    print(f"\nStored in {path or store}, artifacts in {artifacts}\nNext steps:")
    print("\n".join(f"  {command:<{width}}  # {why}" for command, why in steps))
    return 0
