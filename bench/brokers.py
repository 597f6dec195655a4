"""The brokers benchmark: ``python -m bench.brokers [--quick|--full] [--events N]``.

Publish rate: ``events`` events written to a fresh SQLite outbox (``run.tagged``, about 200
bytes of JSON each), then the time for :func:`publish_pending` to send them all to NATS
JetStream (127.0.0.1:4222 or ``CHACHAML_BENCH_NATS``) and have every one acknowledged, from
the cursor's claim to its last move: reads of the outbox, sends and acknowledgements
included. Ids start at a fresh offset each time, so JetStream stores every message rather
than dropping ids it saw in its duplicate window.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import anyio

from bench.figures import Figure
from bench.runner import Benchmark, Context, main_one
from bench.targets import TARGETS
from bench.timing import step
from chachaml.records.events import RunTagged
from chachaml.records.runs import NewRun
from chachaml.store import open_store
from chachaml.store.sql.database import Database, Tx
from chachaml.store.sql.events import emit
from chachaml.tools.brokers import open_broker
from chachaml.tools.brokers.publisher import publish_pending

NAME = "brokers"
NATS = os.environ.get("CHACHAML_BENCH_NATS", "nats://127.0.0.1:4222")


@dataclass(frozen=True)
class Size:
    """Events published per measurement."""

    events: int


SIZES = {"quick": Size(5_000), "default": Size(50_000), "full": Size(200_000)}


def unavailable() -> str | None:
    """Why NATS cannot be measured here, if so."""
    parts = urlsplit(NATS)
    try:
        socket.create_connection((parts.hostname, parts.port or 4222), timeout=2).close()
    except OSError as exc:
        return f"no NATS at {parts.hostname}:{parts.port} ({exc})"
    return None


async def emit_page(page: list[RunTagged], db: Tx) -> None:
    """Write one page of events in the transaction ``db``."""
    await emit(db, *page)


def publish_rate(url: str, events: int) -> float:
    """Events/s from a backlog of ``events`` to every one acknowledged by JetStream."""

    async def go() -> float:
        store = await open_store(url)
        try:
            await store.create_run(NewRun(id="bench", experiment="bench-brokers", name=None,
                                          created_by="bench", started_at=time.time(),
                                          heartbeat_timeout=600))  # fmt: skip
            database: Database = store.database  # type: ignore[attr-defined]
            offset = time.time_ns() // 1_000_000  # unseen by JetStream's duplicate window
            await database.transact(lambda db: db.execute(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'", (offset,)))  # fmt: skip
            tagged = [RunTagged(run_id="bench", tags={"step": str(i), "loss": f"{1 / (i + 1):.6f}"},
                                user="bench") for i in range(events)]  # fmt: skip
            for first in range(0, events, 5_000):
                await database.transact(partial(emit_page, tagged[first : first + 5_000]))
            broker = open_broker(NATS)
            began = time.perf_counter()
            sent = await publish_pending(store, [broker], owner="bench")
            elapsed = time.perf_counter() - began
            assert sent[broker.name] == events + 2, sent  # + experiment.created, run.started
            return sent[broker.name] / elapsed
        finally:
            await store.close()

    return anyio.run(go)


def measure(size: Size, context: Context) -> list[Figure]:
    """The publish rate to NATS JetStream from a SQLite outbox."""
    url = f"sqlite:///{(context.workdir / 'brokers.db').resolve()}"
    rate = step(f"{size.events:,} events published to NATS JetStream",
                lambda: publish_rate(url, size.events))  # fmt: skip
    return [Figure(NAME, "events published to NATS JetStream", rate, "events/s", "higher",
                   TARGETS["broker publish rate"])]  # fmt: skip


BENCHMARK = Benchmark(NAME, "the outbox's publish rate to NATS JetStream", SIZES, measure,
                      unavailable)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))
