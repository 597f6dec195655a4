"""``chachaml migrate|artifacts|token|alerts``: work on a store itself (copies, tokens, queues)."""

from __future__ import annotations

import argparse
import os
import sys

from chachaml.cli.progress import Progress
from chachaml.cli.runs import table
from chachaml.client.client import Client


def cmd_migrate(args: argparse.Namespace, client: Client) -> int:
    """Copy a whole store into another one (e.g. SQLite to PostgreSQL)."""
    import anyio

    from chachaml.store import open_store
    from chachaml.store.transfer import as_sql_store, migrate

    async def run(progress: Progress) -> dict[str, int]:
        source = await open_store(args.source)
        try:
            target = await open_store(args.target)
            try:
                report = await migrate(
                    as_sql_store(source, args.source),
                    as_sql_store(target, args.target),
                    merge=args.merge,
                    progress=progress,
                )
            finally:
                await target.close()
        finally:
            await source.close()
        return report.copied

    with Progress() as progress:
        copied = anyio.run(run, progress)
    summary = ", ".join(f"{n} {table}" for table, n in sorted(copied.items()) if n)
    print(f"copied {summary or 'nothing new'}; counts verified")
    return 0


def cmd_compress_metrics(args: argparse.Namespace, client: Client) -> int:
    """Rewrite the metric chunks a store kept raw (before migration 21) compressed."""
    import anyio

    from chachaml.store import open_store
    from chachaml.store.migrations.metric_chunks import Compressed, compress_stored_chunks
    from chachaml.store.transfer import as_sql_store

    url = client.settings.store_url

    async def run() -> Compressed:
        store = await open_store(url)
        try:
            return await compress_stored_chunks(as_sql_store(store, url).database)
        finally:
            await store.close()

    done = anyio.run(run)
    saved = f"{done.bytes_before / 1e6:,.1f} MB -> {done.bytes_after / 1e6:,.1f} MB"
    print(f"compressed {done.chunks:,} metric chunks ({saved})" if done.chunks
          else "no raw metric chunk left to compress")  # fmt: skip
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
    with Progress() as progress:
        report = anyio.run(migrate_artifacts, source, target, progress)
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
                print(table(rows, ["id", "user", "scope", "token", "created", "state"]))
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


def cmd_events(args: argparse.Namespace, client: Client) -> int:
    """``chachaml events publish``: publish the store's events to brokers, apart from a server.

    Forever (a service of its own), or with ``--once`` what is pending now. The brokers are
    ``--to`` URLs, else ``CHACHAML_EVENTS``; with several publishers (servers included) on
    one database, each broker is published by one of them at a time.
    """
    import anyio

    from chachaml.errors import InvalidInput
    from chachaml.store import open_store
    from chachaml.store.server_state import require_server_state
    from chachaml.tools.brokers import open_brokers
    from chachaml.tools.brokers.publisher import publish_pending, run_brokers

    urls = [u.strip() for arg in args.to or () for u in arg.split(",") if u.strip()]
    brokers = open_brokers(urls or client.settings.events)  # bad URLs: refused before any I/O
    if not brokers:
        raise InvalidInput(
            "no broker to publish to: pass --to URL or set CHACHAML_EVENTS (nats://...,"
            " redis://..., amqp://...)"
        )
    url = client.settings.store_url

    async def publish() -> int:
        store = require_server_state(await open_store(url), "chachaml events publish")
        try:
            if args.once:
                for name, n in (await publish_pending(store, brokers)).items():
                    print(f"{name}: {n} events published")
                return 0
            names = ", ".join(b.name for b in brokers)
            print(f"chachaml: publishing the events of {url} to {names}", file=sys.stderr)
            await run_brokers(store, brokers)
            return 0
        finally:
            await store.close()

    try:
        return anyio.run(publish)
    except KeyboardInterrupt:
        return 0
