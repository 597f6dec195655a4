"""Webhook subscriptions to the event stream, through the alert webhooks' queue (both backends).

Every receiver is real (a server on 127.0.0.1); stores are real SQLite files and PostgreSQL
schemas. The HTTP, MCP and remote-store surfaces are in :mod:`tests.server.api` and
:mod:`tests.server.mcp` (``test_subscriptions``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import anyio
import pytest

from chachaml.errors import InvalidInput, NotFound
from chachaml.store import ServerStore, open_store
from chachaml.store.sql.database import fetch
from chachaml.store.transfer import as_sql_store
from chachaml.tools import subscriptions as ops
from chachaml.tools.deliveries import drain_deliveries, run_delivery_worker
from chachaml.tools.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
    signature,
)
from tests.support.alert_firing import LOCAL, new_run
from tests.support.waiting import await_for
from tests.support.webhook_receiver import Receiver, refused_url, webhook_receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


async def subscribe(
    store: ServerStore, url: str, types: list[str] | None = None, secret: str | None = None
) -> int:
    new = ops.build_subscription(url, types, secret, "admin")
    return (await ops.subscribe(store, new, allow_private=True)).id


async def test_matching_events_arrive_in_order_signed_and_named_by_their_id(
    store: ServerStore, receiver: Receiver
) -> None:
    before = await new_run(store)  # committed before the subscription: not sent
    sub = await subscribe(store, receiver.url, ["run.*"], secret="s3cret")
    run_id = await new_run(store, experiment="other")  # experiment.created: not matched
    await store.set_tags(run_id, {"lr": "0.1"})
    await store.end_run(run_id, "completed", None, time.time())
    report = await drain_deliveries(store, LOCAL)
    assert (report.delivered, report.failed, report.pending) == (3, 0, 0)
    bodies = [hit.json for hit in receiver.received]
    assert [(b["type"], b["runid"]) for b in bodies] == [
        ("run.started", run_id), ("run.tagged", run_id), ("run.ended", run_id),
    ]  # fmt: skip
    assert before not in {b["runid"] for b in bodies}
    ids = [int(b["id"]) for b in bodies]
    assert ids == sorted(ids)
    for hit in receiver.received:
        assert hit.headers[EVENT_HEADER] == hit.json["id"]
        stamp = hit.headers[TIMESTAMP_HEADER]
        assert hit.headers[SIGNATURE_HEADER] == signature("s3cret", stamp, hit.body)
        assert hit.json["specversion"] == "1.0" and hit.json["source"] == "chachaml"
    (listed,) = await ops.list_subscriptions(store)
    assert (listed.id, listed.types, listed.signed) == (sub, ["run.*"], True)
    assert (listed.delivered, listed.failed, listed.pending, listed.last_status) == (3, 0, 0, 200)
    assert listed.target == "http://127.0.0.1/…"  # the path is not shown
    assert "s3cret" not in listed.model_dump_json()


async def test_a_failing_receiver_is_retried_in_order_and_resumed_after_a_restart(
    store_url: str, receiver: Receiver
) -> None:
    receiver.script[:] = [200, 503, 200, 200]
    slow = Delivery(timeout=0.5, attempts=3, backoff=0.2, allow_private=True)
    first = await open_store(store_url)
    try:
        await subscribe(first, receiver.url, ["run.started"])
        runs = [await new_run(first) for _ in range(3)]
        report = await drain_deliveries(first, slow, wait=0)  # one pass, then "crash"
        assert (report.delivered, report.pending) == (1, 2)  # the third waits for the second
        assert len(receiver.received) == 2
        rows = await fetch(
            as_sql_store(first, store_url).database,
            "SELECT attempts, last_status FROM webhook_deliveries ORDER BY id",
        )
        # the second was tried once; the third, claimed with it, was handed back untried
        assert [(r["attempts"], r["last_status"]) for r in rows] == [(1, 503), (0, None)]
    finally:
        await first.close()
    again = await open_store(store_url)
    try:
        report = await drain_deliveries(again, slow)
        assert (report.delivered, report.failed, report.pending) == (2, 0, 0)
        assert [hit.json["runid"] for hit in receiver.received] == [runs[0], runs[1], *runs[1:]]
        (listed,) = await ops.list_subscriptions(again)
        assert (listed.delivered, listed.failed, listed.last_error) == (3, 0, None)
    finally:
        await again.close()


async def test_a_dead_receiver_fails_each_event_after_its_attempts_and_says_why(
    store: ServerStore,
) -> None:
    await subscribe(store, refused_url(), ["run.started"])
    await new_run(store)
    report = await drain_deliveries(store, LOCAL)
    assert (report.delivered, report.failed, report.pending) == (0, 1, 0)
    (listed,) = await ops.list_subscriptions(store)
    assert (listed.failed, listed.last_status, listed.last_error) == (1, None, "connection refused")


async def test_unsubscribe_stops_deliveries_queued_or_not(
    store: ServerStore, receiver: Receiver
) -> None:
    kept = await subscribe(store, receiver.url, ["run.ended"])
    gone = await subscribe(store, receiver.url, ["run.started"])
    run_id = await new_run(store)
    await store.queue_subscribed_events(100)  # queued for ``gone``, not yet sent
    await ops.unsubscribe(store, gone)
    await store.end_run(run_id, "completed", None, time.time())
    await new_run(store)
    report = await drain_deliveries(store, LOCAL)
    assert (report.delivered, report.pending) == (1, 0)
    assert [hit.json["type"] for hit in receiver.received] == ["run.ended"]
    assert [s.id for s in await ops.list_subscriptions(store)] == [kept]
    with pytest.raises(NotFound, match="subscription"):
        await ops.unsubscribe(store, gone)


async def test_replicas_on_one_database_send_each_event_once_per_subscription(
    store_url: str,
) -> None:
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        with webhook_receiver() as one, webhook_receiver() as two:
            await subscribe(stores[0], one.url)
            await subscribe(stores[0], two.url, ["run.*"])
            runs = [await new_run(stores[i % 3]) for i in range(6)]
            async with anyio.create_task_group() as tg:
                for s in stores * 2:
                    tg.start_soon(drain_deliveries, s, LOCAL)
            got_one = [(h.json["type"], h.json["runid"]) for h in one.received]
            got_two = [(h.json["type"], h.json["runid"]) for h in two.received]
        assert got_two == [("run.started", r) for r in runs]  # once each, in order
        assert [r for t, r in got_one if t == "run.started"] == runs
        assert len(got_one) == len(set(got_one)) == 7  # and experiment.created, once
    finally:
        for s in stores:
            await s.close()


async def test_the_worker_hears_a_commit_without_waiting_for_its_poll(
    store: ServerStore, receiver: Receiver
) -> None:
    await subscribe(store, receiver.url, ["run.started"])
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_delivery_worker(store, LOCAL, stop=stop, poll=60))
        await anyio.sleep(0)
        with anyio.fail_after(10):  # far below the poll: woken by the commit
            run_id = await new_run(store)
            await await_for(lambda: _received(receiver))
        stop.set()
    assert receiver.received[0].json["runid"] == run_id


async def _received(receiver: Receiver) -> bool:
    return bool(receiver.received)


@pytest.mark.parametrize(
    ("url", "types", "message"),
    [
        ("ftp://hooks.test/x", None, "http:// or https://"),
        ("not a url", None, "http:// or https://"),
        ("https://hooks.test/x", ["runs.*"], "matches no event type"),
        ("https://hooks.test/x", ["run.ended", "RUN"], "may hold only"),
        ("https://hooks.test/x", [], "at least one"),
        ("https://hooks.test/x", "run.*", None),  # a comma-separated string is fine
    ],
)
def test_bad_urls_and_unknown_type_patterns_are_refused_clearly(
    url: str, types: object, message: str | None
) -> None:
    if message is None:
        assert ops.build_subscription(url, types, None, "ada").types == ("run.*",)
        return
    with pytest.raises(InvalidInput, match=message):
        ops.build_subscription(url, types, None, "ada")


async def test_a_private_address_is_refused_unless_allowed(store: ServerStore) -> None:
    new = ops.build_subscription("http://10.1.2.3/hook", None, None, "ada")
    with pytest.raises(InvalidInput, match="not a public address"):
        await ops.subscribe(store, new)
    assert await ops.list_subscriptions(store) == []
    allowed = await ops.subscribe(store, new, allow_private=True)
    assert allowed.types == ["*"] and not allowed.signed
    assert json.loads(allowed.model_dump_json())["after"] >= 0


async def test_what_stays_queued_past_the_events_retention_is_given_up_on(
    store: ServerStore,
) -> None:
    await subscribe(store, refused_url(), ["run.started"])
    await new_run(store)
    await store.queue_subscribed_events(100)
    await store.prune_events(time.time() - 60)  # queued within the retention: kept
    assert [s.pending for s in await ops.list_subscriptions(store)] == [1]
    await store.prune_events(time.time() + 1)
    (listed,) = await ops.list_subscriptions(store)
    assert (listed.pending, listed.failed) == (0, 1)
    report = await drain_deliveries(store, LOCAL)  # nothing left to send
    assert (report.delivered, report.failed, report.pending) == (0, 0, 0)
