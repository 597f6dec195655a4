"""Alert rules written straight to a store and bad runs that fire them, for the webhook tests.

Each fired event is queued, not delivered: a worker, ``drain_deliveries`` or a server sends it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from chachaml.records.alerts import AlertEvent, NewAlert
from chachaml.records.runs import NewRun
from chachaml.store import ServerStore
from chachaml.store.codec import make_chunk
from chachaml.tools import alerts as ops
from chachaml.tools.webhooks import Delivery

# the receivers run on 127.0.0.1: these tests allow private targets explicitly
LOCAL = Delivery(base_url="http://ui.test", timeout=0.5, attempts=3, backoff=0.05,
                 allow_private=True)  # fmt: skip


async def new_run(
    store: ServerStore, started: float | None = None, experiment: str = "mnist"
) -> str:
    """A running run (started now unless ``started``) with a long heartbeat timeout."""
    run_id = uuid.uuid4().hex
    await store.create_run(
        NewRun(
            id=run_id,
            experiment=experiment,
            name=None,
            created_by="tester",
            started_at=time.time() if started is None else started,
            heartbeat_timeout=3600.0,
        )
    )
    return run_id


async def raw_rule(store: ServerStore, url: str, name: str = "acc-low", **extra: Any) -> None:
    """A rule written to the store directly, as an old version (or another process) might."""
    await store.set_alert(
        NewAlert(
            name=name,
            kind="threshold",
            metric_key="accuracy",
            op="<",
            threshold=0.8,
            webhook_url=url,
            created_by="tester",
            **extra,
        )
    )


async def fire(store: ServerStore, delivery: Delivery = LOCAL, value: float = 0.5) -> AlertEvent:
    """A bad run, evaluated: the one event it fires (queued, not delivered)."""
    run_id = await new_run(store)
    await store.log_metrics([make_chunk(run_id, "accuracy", [(0, value, time.time())])])
    (event,) = await ops.evaluate_run(store, run_id, delivery)
    return event


async def history(store: ServerStore, name: str = "acc-low") -> AlertEvent:
    (event,) = await ops.alert_history(store, name)
    return event


async def delivered(store: ServerStore) -> bool:
    """Whether the one event of ``acc-low`` is settled: delivered or failed for good."""
    return (await history(store)).delivery in ("delivered", "failed")
