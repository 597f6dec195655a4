"""The ``chachaml`` command line: look at runs and experiments, run the demo, serve MCP.

Subcommands register themselves in :data:`COMMANDS`; each gets the parsed arguments and a
:class:`~chachaml.client.client.Client` built from ``--store``/``--artifacts`` (falling back
to ``CHACHAML_STORE``/``CHACHAML_ARTIFACTS``). Heavy imports stay inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chachaml.cli.imports import cmd_import
from chachaml.cli.parser import build_parser
from chachaml.cli.runs import cmd_best, cmd_demo, cmd_experiments, cmd_runs, cmd_show
from chachaml.cli.servers import cmd_chat, cmd_mcp, cmd_pipeline, cmd_serve
from chachaml.cli.stores import (
    cmd_alerts,
    cmd_artifacts,
    cmd_compress_metrics,
    cmd_events,
    cmd_migrate,
    cmd_token,
)
from chachaml.client.client import Client
from chachaml.errors import ChachamlError

Command = Callable[[argparse.Namespace, Client], int]
COMMANDS: dict[str, Command] = {}
COMMANDS.update(
    runs=cmd_runs,
    show=cmd_show,
    experiments=cmd_experiments,
    best=cmd_best,
    demo=cmd_demo,
    migrate=cmd_migrate,
    artifacts=cmd_artifacts,
    pipeline=cmd_pipeline,
    mcp=cmd_mcp,
    serve=cmd_serve,
    token=cmd_token,
    alerts=cmd_alerts,
    chat=cmd_chat,
    events=cmd_events,
)
COMMANDS["import"] = cmd_import  # a keyword: not an update() argument
COMMANDS["compress-metrics"] = cmd_compress_metrics


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chachaml`` console script."""
    args = build_parser().parse_args(argv)
    client = Client(store=args.store, artifacts=args.artifacts)
    try:
        return COMMANDS[args.command](args, client)
    except ChachamlError as exc:
        print(f"chachaml: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()


__all__ = ["COMMANDS", "build_parser", "main"]
