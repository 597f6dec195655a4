"""``chachaml mcp|serve|chat|pipeline``: the servers and clients started from the command line."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from chachaml import __version__
from chachaml.client.client import Client


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
    toolsets = _toolsets(args)  # a bad name is refused before stdio is claimed
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
            toolsets=toolsets,
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


def cmd_chat(args: argparse.Namespace, client: Client) -> int:
    """Ask a question about the store; stream the answer, then list the tool calls behind it.

    ``--json`` and ``--no-stream`` wait for the whole answer (one request per reply, no
    stream), for a script or for a gateway that cannot stream.
    """
    from chachaml.chat import ask
    from chachaml.cli.chat import AnswerPrinter, print_tool_calls

    settings = client.settings
    printer = None if args.json or args.no_stream else AnswerPrinter(sys.stdout)
    try:
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
            on_event=printer,
        )
    except BaseException:  # an error (on stderr) or Ctrl-C starts on a line of its own
        if printer is not None:
            printer.end_line()
        raise
    if args.json:
        print(answer.model_dump_json(indent=2))
        return 0
    if printer is None:
        print(answer.answer)
    else:
        printer.finish(answer.answer)
    print_tool_calls(answer, sys.stdout)
    return 0


def cmd_pipeline(args: argparse.Namespace, client: Client) -> int:
    """Run a pipeline definition (``module:attr``) with a live view of its steps."""
    from chachaml.client.pipelines.display import run_with_board

    return run_with_board(args.target, client, sys.stdout, args.executor)
