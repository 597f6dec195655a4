"""``chachaml import mlflow``: bring another tracker's history into a chachaml store."""

from __future__ import annotations

import argparse
import sys

from chachaml.cli.progress import Progress
from chachaml.cli.runs import table
from chachaml.client.client import Client


def cmd_import(args: argparse.Namespace, client: Client) -> int:
    """Import an MLflow store, then print what was read beside what chachaml holds.

    Exit status 1 when a count differs (the import is incomplete: run it again to resume).
    """
    from chachaml.tools.mlflow_import import import_mlflow

    with Progress() as progress:
        report = client.op(
            import_mlflow,
            client.runtime.artifacts,
            args.source,
            experiments=args.experiment or (),
            progress=progress,
        )
    added = report.added
    rows = [
        [kind.replace("_", " "), n, report.stored.as_dict()[kind], added[kind]]
        for kind, n in report.read.as_dict().items()
    ]
    print(f"imported from {report.source}")
    print(table(rows, ["", "in MLflow", "in chachaml", "added now"]))
    for line in report.skipped:
        print(f"skipped: {line}")
    for line in report.notes:
        print(f"note: {line}")
    if report.mismatches:
        wrong = ", ".join(f"{k} {a} != {b}" for k, (a, b) in report.mismatches.items())
        print(f"chachaml: count check failed ({wrong}); run the import again", file=sys.stderr)
        return 1
    if not any(added.values()):
        print("nothing new: everything was imported already; counts verified")
    else:
        print("counts verified")
    return 0
