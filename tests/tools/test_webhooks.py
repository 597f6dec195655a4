"""Finding 10 and the webhook part of 12: alerts never wait on webhooks, and webhooks stay outside.

Delivery runs from the ``webhook_deliveries`` queue, by a worker in the server (or
``chachaml alerts deliver``), never inside an ingest request or the training process.
Targets on loopback/private ranges are refused unless allowed; error bodies are never stored.
Every webhook here is real: a receiver on 127.0.0.1, a server that never answers, a dead port.
A ``chachaml serve`` or ``chachaml mcp`` process delivering the queue, and the metrics POST to a
real server, are in :mod:`tests.e2e.test_webhook_delivery`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

from chachaml.client.alerts import Alerts
from chachaml.client.client import Client
from chachaml.errors import InvalidInput
from chachaml.store import ServerStore, open_store
from chachaml.store.sql.database import fetch
from chachaml.store.transfer import as_sql_store
from chachaml.tools import alerts as ops
from chachaml.tools.deliveries import drain_deliveries, run_delivery_worker
from chachaml.tools.webhooks import Delivery
from tests.conftest import make_settings
from tests.support.alert_firing import LOCAL, delivered, fire, history, raw_rule
from tests.support.waiting import await_for
from tests.support.webhook_receiver import Receiver, refused_url, webhook_receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@asynccontextmanager
async def worker(store: ServerStore, delivery: Delivery = LOCAL) -> AsyncIterator[None]:
    """The delivery worker, running in the background until the block ends."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_delivery_worker(store, delivery, stop=stop, poll=0.05))
        try:
            yield
        finally:
            stop.set()


# finding 10: nothing waits on a webhook


async def test_end_run_only_enqueues_and_the_training_process_never_calls_the_webhook(
    store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(webhook_allow_private=True)
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=settings)
    try:
        Alerts(client).set_threshold_alert(
            "acc-low", "accuracy", "<", 0.8, webhook_url=receiver.url
        )
        with client.run("mnist") as run:
            client.log_metric("accuracy", 0.5)
            started = time.monotonic()
        took = time.monotonic() - started
        assert receiver.received == []  # the training process sent nothing
        (event,) = Alerts(client).alert_history()
        assert (event.run_id, event.delivery, event.attempts) == (run.id, "pending", [])
        assert took < Delivery.timeout / 2  # ending the run waits on no delivery
    finally:
        client.close()
    store = await open_store(store_url)
    try:
        report = await drain_deliveries(store, LOCAL)
        assert (report.delivered, report.failed, report.pending) == (1, 0, 0)
        (hit,) = receiver.received
        assert run.id in hit.json["text"]
        event = await history(store)
        assert event.delivery == "delivered" and [a.status_code for a in event.attempts] == [200]
    finally:
        await store.close()


async def test_the_worker_delivers_to_a_live_receiver(
    store: ServerStore, receiver: Receiver
) -> None:
    await ops.set_alert(
        store,
        ops.build_rule(
            "acc-low",
            "tester",
            metric_key="accuracy",
            op="<",
            threshold=0.8,
            webhook_url=receiver.url,
        ),
        allow_private=True,
    )
    async with worker(store):
        event = await fire(store)
        await await_for(lambda: delivered(store))
    (hit,) = receiver.received
    assert event.run_id is not None and event.run_id in hit.json["text"]
    stored = await history(store)
    assert [(a.status_code, a.error) for a in stored.attempts] == [(200, None)]


async def test_a_503_is_retried_with_growing_backoff_then_delivered(
    store: ServerStore, receiver: Receiver
) -> None:
    receiver.script[:] = [503, 503, 200]
    await raw_rule(store, receiver.url)
    spaced = Delivery(timeout=0.5, attempts=3, backoff=0.3, allow_private=True)
    async with worker(store, spaced):
        await fire(store)
        await await_for(lambda: delivered(store))
    event = await history(store)
    assert event.delivery == "delivered"
    assert [(a.status_code, a.error) for a in event.attempts] == [
        (503, "http 503"),
        (503, "http 503"),
        (200, None),
    ]
    first, second, third = (a.at.timestamp() for a in event.attempts)
    assert second - first >= 0.3 and third - second >= 0.6  # the pause doubles
    assert len(receiver.received) == 3


async def test_a_queued_delivery_survives_a_restart(store_url: str, receiver: Receiver) -> None:
    receiver.script[:] = [503, 200]
    slow_retry = Delivery(timeout=0.5, attempts=3, backoff=0.3, allow_private=True)
    first = await open_store(store_url)
    try:
        await raw_rule(first, receiver.url)
        await fire(first)
        report = await drain_deliveries(first, slow_retry, wait=0)  # one try, then "crash"
        assert (report.delivered, report.pending) == (0, 1)
        assert (await history(first)).delivery == "pending"
    finally:
        await first.close()
    again = await open_store(store_url)  # a new process over the same database
    try:
        report = await drain_deliveries(again, slow_retry)
        assert (report.delivered, report.failed, report.pending) == (1, 0, 0)
        event = await history(again)
        assert event.delivery == "delivered"
        assert [a.status_code for a in event.attempts] == [503, 200]
        assert len(receiver.received) == 2
    finally:
        await again.close()


async def test_two_workers_on_one_database_never_send_twice(
    store_url: str, receiver: Receiver
) -> None:
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        await raw_rule(stores[0], receiver.url)
        for _ in range(6):
            await fire(stores[0])
        async with anyio.create_task_group() as tg:
            for s in stores * 2:
                tg.start_soon(drain_deliveries, s, LOCAL)
        assert len(receiver.received) == 6
        assert len({hit.json["text"] for hit in receiver.received}) == 6
        events = await ops.alert_history(stores[0])
        assert [len(e.attempts) for e in events] == [1] * 6
    finally:
        for s in stores:
            await s.close()


async def test_a_dead_port_fails_after_the_attempts_with_an_error_kind(store: ServerStore) -> None:
    await raw_rule(store, refused_url())
    await fire(store)
    report = await drain_deliveries(store, LOCAL)
    assert (report.delivered, report.failed) == (0, 1)
    event = await history(store)
    assert event.delivery == "failed"
    assert [(a.status_code, a.error) for a in event.attempts] == [(None, "connection refused")] * 3


# finding 12: private targets and error bodies


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9000/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://240.0.0.1/hook",
        "http://100.64.0.1/hook",
    ],
)
async def test_private_targets_are_refused_when_the_rule_is_set(
    store: ServerStore, url: str
) -> None:
    rule = ops.build_rule("hook", "tester", silent_minutes=5, webhook_url=url)
    with pytest.raises(InvalidInput, match=r"alert 'hook'.*CHACHAML_WEBHOOK_ALLOW_PRIVATE"):
        await ops.set_alert(store, rule)
    assert await ops.list_alerts(store) == []
    allowed = await ops.set_alert(store, rule, allow_private=True)
    assert allowed.name == "hook"


async def test_the_python_api_refuses_private_targets_unless_the_setting_allows(
    store_url: str, tmp_path: Path
) -> None:
    for allow in (False, True):
        client = Client(store=store_url, artifacts=str(tmp_path / "a"),
                        settings=make_settings(webhook_allow_private=allow))  # fmt: skip
        try:
            api = Alerts(client)
            if allow:
                assert api.set_silent_alert(
                    "low", silent_minutes=5, webhook_url="http://10.0.0.7/h"
                )
            else:
                with pytest.raises(InvalidInput, match="alert 'low'"):
                    api.set_silent_alert("low", silent_minutes=5, webhook_url="http://10.0.0.7/h")
        finally:
            client.close()


async def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    store: ServerStore, receiver: Receiver
) -> None:
    port = urlsplit(receiver.url).port
    await raw_rule(store, f"http://localhost:{port}/hook")  # stored before the check existed
    await fire(store)
    report = await drain_deliveries(store, Delivery(timeout=0.5, attempts=3, backoff=0.01))
    assert (report.delivered, report.failed) == (0, 1)
    assert receiver.received == []
    event = await history(store)
    assert event.delivery == "failed"
    assert [(a.status_code, a.error) for a in event.attempts] == [(None, "refused private address")]
    # allowed explicitly, the same rule is delivered to the address that was checked
    await ops.delete_alert(store, "acc-low")
    await raw_rule(store, f"http://localhost:{port}/hook", name="allowed")
    await fire(store)
    assert (await drain_deliveries(store, LOCAL)).delivered == 1
    (hit,) = receiver.received
    assert hit.headers["Host"] == f"localhost:{port}"


def test_the_allow_private_setting_comes_from_the_environment() -> None:
    from chachaml.settings import Settings

    assert Settings.from_env({}).webhook_allow_private is False
    on = Settings.from_env({"CHACHAML_WEBHOOK_ALLOW_PRIVATE": "true"})
    assert on.webhook_allow_private is True
    assert Delivery.from_settings(on).allow_private is True
    assert Delivery.from_settings(Settings.from_env({})).allow_private is False


async def test_error_bodies_are_never_stored_nor_shown(
    store: ServerStore, receiver: Receiver, store_url: str
) -> None:
    leak = b"internal error: db password=hunter2-SECRET at 10.0.0.5"
    receiver.script[:] = [(500, leak), (502, leak), (404, leak)]
    await raw_rule(store, receiver.url)
    await fire(store)
    report = await drain_deliveries(store, LOCAL)
    assert report.failed == 1
    event = await history(store)
    assert [(a.status_code, a.error) for a in event.attempts] == [
        (500, "http 500"),
        (502, "http 502"),
        (404, "http 404"),
    ]
    shown = "".join(e.model_dump_json() for e in await ops.alert_history(store))
    assert "hunter2" not in shown and "SECRET" not in shown
    sql = as_sql_store(store, store_url)
    for table in ("alert_events", "webhook_deliveries"):
        rows = [tuple(r) for r in await fetch(sql.database, f"SELECT * FROM {table}")]
        assert rows and "hunter2" not in repr(rows)
