"""The argument parser: every subcommand, and the options each one takes."""

from __future__ import annotations

import argparse

from chachaml import __version__
from chachaml.server.mcp.client_config import CLIENTS
from chachaml.tools.catalogue import OPT_IN_TOOLSETS


def _global_options(p: argparse.ArgumentParser, store_help: str = "store URL") -> None:
    """``--store``/``--artifacts`` after a subcommand too: one grammar for every command.

    SUPPRESS keeps the top-level value when an option is not repeated after the subcommand.
    """
    p.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
    p.add_argument("--artifacts", default=argparse.SUPPRESS, help="artifact root")


def _server_options(p: argparse.ArgumentParser) -> None:
    _global_options(p)
    p.add_argument(
        "--toolsets",
        help=f"comma-separated opt-in tool groups: {', '.join(OPT_IN_TOOLSETS)}, or all"
        " (default: $CHACHAML_MCP_TOOLSETS)",
    )
    p.add_argument("--read-only", action="store_true", help="leave out every tool that writes")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="chachaml", description=__doc__.split("\n")[0].replace("``", "")
    )
    parser.add_argument("--version", action="version", version=f"chachaml {__version__}")
    parser.add_argument(
        "--store", help="store URL (default: $CHACHAML_STORE or sqlite:///./chachaml.db)"
    )
    parser.add_argument("--artifacts", help="artifact root (default: $CHACHAML_ARTIFACTS)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("runs", help="list runs, newest first")
    _global_options(p)
    p.add_argument("--experiment", "-e")
    p.add_argument("--status", choices=["running", "completed", "failed", "killed", "stopped"])
    p.add_argument("--user")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("show", help="show one run in full (JSON)")
    _global_options(p)
    p.add_argument("run_id")

    p = sub.add_parser("experiments", help="list experiments")
    _global_options(p)

    p = sub.add_parser("best", help="the best run for a metric")
    _global_options(p)
    p.add_argument("metric")
    p.add_argument("--experiment", "-e")
    p.add_argument("--min", action="store_true", help="lower is better")

    p = sub.add_parser("demo", help="train small models on synthetic data, tracked as runs")
    _global_options(p)
    p.add_argument("--runs", type=int, default=4)

    p = sub.add_parser("migrate", help="copy every run and model from one store into another")
    _global_options(p)
    p.add_argument("--from", dest="source", required=True, help="source store URL")
    p.add_argument("--to", dest="target", required=True, help="target store URL")
    p.add_argument(
        "--merge", action="store_true", help="copy into a target that already holds data"
    )

    p = sub.add_parser(
        "compress-metrics",
        help="compress the metric points stored before chachaml compressed them (resumable)",
    )
    _global_options(p)

    p = sub.add_parser("import", help="import another tracker's store (mlflow)")
    actions = p.add_subparsers(dest="import_command", required=True)
    p = actions.add_parser(
        "mlflow",
        help="import an MLflow store: runs, metric histories, artifacts, models (resumable)",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        help="what MLflow's client opens: a mlruns folder, sqlite:///mlflow.db, http://host:5000",
    )
    p.add_argument(
        "--experiment",
        "-e",
        action="append",
        help="import only this MLflow experiment (repeatable; default: every one)",
    )
    _global_options(p)

    p = sub.add_parser("artifacts", help="artifact root maintenance")
    actions = p.add_subparsers(dest="artifacts_command", required=True)
    p = actions.add_parser(
        "migrate", help="copy a local artifact root to S3, verifying hashes (resumable)"
    )
    p.add_argument("--from", dest="source", help="local artifact root (default: --artifacts)")
    p.add_argument("--to", dest="target", required=True, help="target root, s3://bucket/prefix")
    _global_options(p)

    p = sub.add_parser("pipeline", help="run a pipeline defined in Python")
    actions = p.add_subparsers(dest="action", required=True)
    p = actions.add_parser("run", help="run a Pipeline, showing its steps as they go")
    p.add_argument("target", help="module:attr naming a chachaml Pipeline, e.g. flows:nightly")
    p.add_argument(
        "--executor",
        default="local",
        help="where the steps run: local (this process, the default) or dask://host:8786",
    )
    _global_options(p)

    p = sub.add_parser("mcp", help="serve MCP over stdio (or: mcp config --client ...)")
    _server_options(p)
    actions = p.add_subparsers(dest="mcp_command")
    p = actions.add_parser(
        "config", help="print a ready-to-paste MCP client configuration (absolute paths)"
    )
    p.add_argument("--client", required=True, choices=CLIENTS, help="the MCP client")
    p.add_argument("--http", help="a running server's address, e.g. http://127.0.0.1:8080")
    p.add_argument("--token", help="the token to send to --http (default: $CHACHAML_TOKEN)")
    _server_options(p)

    p = sub.add_parser("serve", help="serve the web app with MCP (streamable HTTP) at /mcp")
    _server_options(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, local mode; any other address is team mode)",
    )
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="keep local mode on a non-loopback address: no token needed, so anyone who"
        " reaches the port can read and write (for a container published on loopback only)",
    )

    p = sub.add_parser("chat", help="ask a question about your runs and models (an LLM + tools)")
    _global_options(p)
    p.add_argument("question")
    p.add_argument("--provider", choices=["anthropic", "openai"], default="anthropic")
    p.add_argument("--model", help="model name (default: a current one of the provider)")
    p.add_argument(
        "--base-url", help="provider endpoint (default: $ANTHROPIC_BASE_URL / $OPENAI_BASE_URL)"
    )
    p.add_argument("--max-iterations", type=int, default=10, help="cap on model replies")
    p.add_argument("--toolsets", help="opt-in tool groups, as for `chachaml mcp`")
    p.add_argument("--allow-writes", action="store_true", help="let the model tag runs etc.")
    p.add_argument("--json", action="store_true", help="print the answer and tool calls as JSON")
    p.add_argument(
        "--no-stream",
        action="store_true",
        help="print the answer once complete instead of as it is written (for a gateway"
        " that cannot stream)",
    )

    p = sub.add_parser("alerts", help="alert webhooks")
    actions = p.add_subparsers(dest="alerts_command", required=True)
    p = actions.add_parser("deliver", help="send queued alert webhooks once (no server needed)")
    _global_options(p, "the store whose queue to send")

    p = sub.add_parser("events", help="events: publish them to message brokers")
    actions = p.add_subparsers(dest="events_command", required=True)
    p = actions.add_parser(
        "publish", help="publish the store's events to brokers (apart from `chachaml serve`)"
    )
    _global_options(p, "the store whose events to publish")
    p.add_argument(
        "--to",
        action="append",
        metavar="URL",
        help="a broker (nats://, redis://, amqp://; repeatable or comma-separated;"
        " default: $CHACHAML_EVENTS)",
    )
    p.add_argument("--once", action="store_true", help="publish what is pending now, then exit")

    p = sub.add_parser("token", help="API tokens: create, list, revoke (name the store)")
    actions = p.add_subparsers(dest="token_command", required=True)
    p = actions.add_parser("create", help="create a token for a user and print it once")
    _global_options(p, "the server's store URL")
    p.add_argument("--user", required=True, help="who runs logged with the token belong to")
    p.add_argument(
        "--scope",
        choices=["read", "write", "admin"],
        default="write",
        help="read: every read; write: also tracking and registry writes; admin: also deletes"
        " and webhook alert rules (default: write)",
    )
    p = actions.add_parser("list", help="list tokens (id, user, scope, hint, state)")
    _global_options(p, "the server's store URL")
    p = actions.add_parser("revoke", help="revoke a token by id or hint")
    _global_options(p, "the server's store URL")
    p.add_argument("token", help="the token's id (from `chachaml token list`) or its hint")
    return parser
