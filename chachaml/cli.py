"""The ``chachaml`` command line: look at runs and experiments, run the demo, serve MCP.

Subcommands register themselves in :data:`COMMANDS`; each gets the parsed arguments and a
:class:`~chachaml.client.client.Client` built from ``--store``/``--artifacts`` (falling back
to ``CHACHAML_STORE``/``CHACHAML_ARTIFACTS``). Heavy imports stay inside the commands.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chachaml import __version__
from chachaml.client.client import Client
from chachaml.errors import ChachamlError
from chachaml.records.runs import RunInfo
from chachaml.server.mcp.client_config import CLIENTS
from chachaml.tools.catalogue import OPT_IN_TOOLSETS

Command = Callable[[argparse.Namespace, Client], int]
COMMANDS: dict[str, Command] = {}


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _run_rows(runs: Sequence[RunInfo]) -> str:
    keys = sorted({k for r in runs for k in r.metrics})[:6]
    rows = [
        [
            r.id[:12],
            r.experiment,
            r.name,
            r.status,
            r.created_by,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            *(_fmt(r.metrics.get(k)) for k in keys),
        ]
        for r in runs
    ]
    return _table(rows, ["id", "experiment", "name", "status", "user", "started", *keys])


def cmd_runs(args: argparse.Namespace, client: Client) -> int:
    """List runs, newest first."""
    runs = client.runs(
        experiment=args.experiment, status=args.status, created_by=args.user, limit=args.limit
    )
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        print(_run_rows(runs) if runs else "no runs yet")
    return 0


def cmd_show(args: argparse.Namespace, client: Client) -> int:
    """Show one run in full, as JSON."""
    run_id = args.run_id
    if len(run_id) < 32:  # a short id as the runs table prints it
        matches = [r.id for r in client.runs(limit=None) if r.id.startswith(run_id)]
        if len(matches) == 1:
            run_id = matches[0]
    print(client.get_run(run_id).model_dump_json(indent=2))
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
    print(_table(rows, ["experiment", "runs", "owner", "last activity"]) if exps else "none")
    return 0


def cmd_best(args: argparse.Namespace, client: Client) -> int:
    """Print the best run for a metric."""
    best = client.best_run(args.metric, args.experiment, "min" if args.min else "max")
    if best is None:
        from chachaml.tools.experiments import why_no_runs

        why = client.op(why_no_runs, args.experiment)
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


def _progress_bar(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    end = "\n" if done >= total else ""
    print(
        f"\r{label:<7} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def cmd_migrate(args: argparse.Namespace, client: Client) -> int:
    """Copy a whole store into another one (e.g. SQLite to PostgreSQL)."""
    import anyio

    from chachaml.store import open_store
    from chachaml.store.transfer import as_sql_store, migrate

    async def run() -> dict[str, int]:
        source = await open_store(args.source)
        try:
            target = await open_store(args.target)
            try:
                report = await migrate(
                    as_sql_store(source, args.source),
                    as_sql_store(target, args.target),
                    merge=args.merge,
                    progress=_progress_bar,
                )
            finally:
                await target.close()
        finally:
            await source.close()
        return report.copied

    copied = anyio.run(run)
    summary = ", ".join(f"{n} {table}" for table, n in sorted(copied.items()) if n)
    print(f"copied {summary or 'nothing new'}; counts verified")
    return 0


def cmd_artifacts(args: argparse.Namespace, client: Client) -> int:
    """Move a local artifact root to S3 (``artifacts migrate --to s3://...``), verifying hashes."""
    import anyio

    from chachaml.errors import InvalidInput
    from chachaml.store.artifacts import LocalArtifactStore, open_artifact_store
    from chachaml.store.artifacts.transfer import migrate_artifacts

    settings = client.settings
    source = open_artifact_store(args.source or settings.artifact_root, settings.s3)
    if not isinstance(source, LocalArtifactStore):
        raise InvalidInput(f"artifacts migrate copies from a local folder, not {source.root}")
    target = open_artifact_store(args.target, settings.s3)
    report = anyio.run(migrate_artifacts, source, target, _progress_bar)
    print(
        f"copied {report.copied} objects ({report.bytes_copied / 1e6:.1f} MB), skipped"
        f" {report.skipped} already in {target.root}; hashes verified"
    )
    if report.mismatched:
        print(
            f"{len(report.mismatched)} local objects do not match their hash and were not"
            f" copied: {', '.join(report.mismatched)}",
            file=sys.stderr,
        )
        return 1
    print(f"now set CHACHAML_ARTIFACTS={target.root}; {source.root} is no longer needed")
    return 0


def _toolsets(args: argparse.Namespace) -> tuple[str, ...]:
    from chachaml.tools.catalogue import parse_toolsets

    chosen = args.toolsets
    return parse_toolsets(chosen if chosen is not None else os.environ.get("CHACHAML_MCP_TOOLSETS"))


def _announce_new_store(url: str) -> None:
    """Say on stderr when a server is about to create a new, empty SQLite store.

    A mistyped path would otherwise serve an empty store, and an agent would answer
    "no runs match" instead of anyone learning the configuration is wrong.
    """
    from chachaml.store import sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        print(
            f"chachaml: {path} does not exist yet; serving a new, empty store there",
            file=sys.stderr,
        )


def cmd_mcp_config(args: argparse.Namespace, client: Client) -> int:
    """Print the configuration that makes an MCP client start (or reach) this server."""
    from chachaml.server.mcp import client_config as cc

    settings = client.settings
    if args.http:
        url = cc.mcp_url(args.http)
        token = args.token or settings.token
        if not token and cc.needs_token(url):
            token = cc.TOKEN_PLACEHOLDER
            print("chachaml: the server is in team mode and needs a token", file=sys.stderr)
        text = cc.http_config(args.client, url, token)
    else:
        store = cc.absolute_store(settings.store_url)
        argv = [
            "mcp",
            "--store",
            store,
            "--artifacts",
            str(Path(settings.artifact_root).absolute()),
        ]
        if args.toolsets:
            argv += ["--toolsets", args.toolsets]
        if args.read_only:
            argv.append("--read-only")
        text = cc.stdio_config(args.client, cc.executable(), argv)
    print(f"# {cc.where(args.client)}", file=sys.stderr)
    print(text)
    return 0


def cmd_mcp(args: argparse.Namespace, client: Client) -> int:
    """Speak MCP over stdin/stdout (for Claude Desktop, Claude Code, Continue...)."""
    if getattr(args, "mcp_command", None) == "config":
        return cmd_mcp_config(args, client)
    from chachaml.server.mcp.stdio import EarlyStdio

    settings = client.settings
    _announce_new_store(settings.store_url)
    # claims stdio and answers initialize before the SDK loads
    wire = EarlyStdio(version=__version__, store_url=settings.store_url)
    import anyio

    from chachaml.server.mcp.server import serve_stdio
    from chachaml.tools.webhooks import Delivery

    anyio.run(
        functools.partial(
            serve_stdio,
            wire,
            settings.store_url,
            settings.artifact_root,
            toolsets=_toolsets(args),
            read_only=args.read_only,
            user=settings.user,
            s3=settings.s3,
            delivery=Delivery.from_settings(settings),
        )
    )
    return 0


def cmd_serve(args: argparse.Namespace, client: Client) -> int:
    """Serve the web app, with MCP over streamable HTTP at /mcp."""
    import anyio

    from chachaml.server.api.chat import ChatOptions
    from chachaml.server.api.routes import ApiOptions
    from chachaml.server.app import serve_http

    settings = client.settings
    _announce_new_store(settings.store_url)
    anyio.run(
        functools.partial(
            serve_http,
            settings.store_url,
            settings.artifact_root,
            host=args.host,
            port=args.port,
            toolsets=_toolsets(args),
            read_only=args.read_only,
            user=settings.user,
            s3=settings.s3,
            api=ApiOptions(settings, insecure=args.insecure),
            chat=ChatOptions(settings=settings, toolsets=_toolsets(args)),
        )
    )
    return 0


def cmd_token(args: argparse.Namespace, client: Client) -> int:
    """Create, list or revoke API tokens in the store that is named explicitly."""
    import anyio

    from chachaml.server import tokens as auth
    from chachaml.store import open_store

    url = args.store or os.environ.get("CHACHAML_STORE")
    if not url:
        # Guessing ./chachaml.db would put the token where no server looks for it.
        print(
            "chachaml: name the store the server uses: chachaml token ... --store URL"
            " (or set CHACHAML_STORE)",
            file=sys.stderr,
        )
        return 2

    async def act() -> int:
        store = await open_store(url)
        try:
            if args.token_command == "create":
                token, info = await auth.create_token(store, args.user, args.scope)
                print(token)
                print(
                    f"chachaml: token {info.id} ({info.hint}...) for {info.user!r} with"
                    f" {info.scope} scope created in {url}; it is shown only once",
                    file=sys.stderr,
                )
            elif args.token_command == "list":
                print(f"tokens in {url}:", file=sys.stderr)
                rows = [
                    [
                        str(t.id),
                        t.user,
                        t.scope,
                        t.hint + "...",
                        _when(t.created_at),
                        "revoked " + _when(t.revoked_at) if t.revoked_at else "active",
                    ]
                    for t in await auth.list_tokens(store)
                ]
                print(_table(rows, ["id", "user", "scope", "token", "created", "state"]))
            else:
                info = await auth.revoke_token(store, args.token)
                print(
                    f"chachaml: token {info.id} ({info.hint}...) of {info.user!r} revoked in {url};"
                    " running servers refuse it within seconds"
                )
            return 0
        finally:
            await store.close()

    return anyio.run(act)


def _when(at: float | None) -> str:
    from datetime import datetime

    return "" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


def cmd_alerts(args: argparse.Namespace, client: Client) -> int:
    """``chachaml alerts deliver``: send queued alert webhooks once (no server needed).

    For setups without a server (a server delivers them itself). Exit status 1 if any
    delivery failed.
    """
    from chachaml.tools.deliveries import drain_deliveries
    from chachaml.tools.webhooks import Delivery

    report = client.op(drain_deliveries, Delivery.from_settings(client.settings))
    print(
        f"webhooks: {report.delivered} delivered, {report.failed} failed,"
        f" {report.pending} still pending"
    )
    return 1 if report.failed else 0


def cmd_chat(args: argparse.Namespace, client: Client) -> int:
    """Ask a question about the store; print the answer and the tool calls behind it."""
    from chachaml.chat import ask

    settings = client.settings
    answer = ask(
        args.question,
        args.provider,
        model=args.model,
        base_url=args.base_url,
        max_iterations=args.max_iterations,
        store=settings.store_url,
        artifacts=settings.artifact_root,
        toolsets=_toolsets(args),
        allow_writes=args.allow_writes,
        settings=settings,
    )
    if args.json:
        print(answer.model_dump_json(indent=2))
        return 0
    print(answer.answer)
    if answer.tool_calls:
        print(f"\n{len(answer.tool_calls)} tool calls ({answer.provider} {answer.model}):")
    for call in answer.tool_calls:
        flag = " (error)" if call.is_error else ""
        print(f"  {call.name}({json.dumps(call.arguments)}){flag} -> {call.result[:120]}")
    return 0


def cmd_pipeline(args: argparse.Namespace, client: Client) -> int:
    """Run a pipeline definition (``module:attr``) with a live view of its steps."""
    from chachaml.client.pipelines.display import run_with_board

    return run_with_board(args.target, client, sys.stdout)


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
)


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
    p.add_argument("--status", choices=["running", "completed", "failed", "killed"])
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

    p = sub.add_parser("alerts", help="alert webhooks")
    actions = p.add_subparsers(dest="alerts_command", required=True)
    p = actions.add_parser("deliver", help="send queued alert webhooks once (no server needed)")
    _global_options(p, "the store whose queue to send")

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


if __name__ == "__main__":
    sys.exit(main())
