"""Alert rules, firings and deliveries on every backend: one rule per name, once per subject."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from chachaml.errors import Conflict, NotFound
from chachaml.records.alerts import DeliveryAttempt, NewAlert, NewAlertEvent
from chachaml.records.runs import to_datetime
from chachaml.store import ServerStore, open_store
from chachaml.store.codec import make_chunk
from chachaml.store.transfer import as_sql_store, migrate
from tests.support.alert_firing import new_run

pytestmark = [pytest.mark.anyio, pytest.mark.contract]


def rule(name: str = "acc-low", cooldown: float = 0.0, **changes: object) -> NewAlert:
    fields: dict[str, object] = {
        "name": name,
        "kind": "threshold",
        "metric_key": "accuracy",
        "op": "<",
        "threshold": 0.8,
        "cooldown_seconds": cooldown,
        "created_by": "tester",
    }
    return NewAlert.model_validate({**fields, **changes})


def event(subject: str, at: float, webhook: bool = False) -> NewAlertEvent:
    return NewAlertEvent(
        subject=subject,
        run_id=subject,
        experiment="mnist",
        message="m",
        fired_at=at,
        webhook=webhook,
    )


async def test_setting_a_name_twice_replaces_the_rule(store: ServerStore) -> None:
    first = await store.set_alert(rule(webhook_url="https://hooks.test/T/B/secret", secret="k"))
    second = await store.set_alert(rule(threshold=0.5, created_by="bob"))
    (only,) = await store.list_alerts()
    assert only == second
    assert (only.threshold, only.webhook_url, only.secret, only.signed) == (0.5, None, None, False)
    assert only.created_by == "tester" and only.created_at == first.created_at
    assert first.webhook == "https://hooks.test/…" and first.signed


async def test_concurrent_sets_of_one_name_leave_one_rule(store_url: str) -> None:
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        async with anyio.create_task_group() as tg:
            for i, s in enumerate(stores * 3):
                tg.start_soon(s.set_alert, rule(threshold=float(i)))
        assert len(await stores[0].list_alerts()) == 1
    finally:
        for s in stores:
            await s.close()


async def test_a_rule_fires_once_per_subject_whatever_the_interleaving(store_url: str) -> None:
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        await stores[0].set_alert(rule())
        fired: list[int] = []

        async def fire(s: ServerStore) -> None:
            found = await s.fire_alert("acc-low", event("run-1", time.time()))
            if found is not None:
                fired.append(found.id)

        async with anyio.create_task_group() as tg:
            for s in stores * 4:
                tg.start_soon(fire, s)
        assert len(fired) == 1
        (stored,) = await stores[0].alert_events("acc-low")
        assert stored.id == fired[0] and stored.delivery == "none"
    finally:
        for s in stores:
            await s.close()


@pytest.mark.server_store
async def test_cooldown_counts_from_the_last_firing(store: ServerStore) -> None:
    await store.set_alert(rule(cooldown=600))
    now = time.time()
    assert await store.fire_alert("acc-low", event("a", now)) is not None
    assert await store.fire_alert("acc-low", event("b", now + 599)) is None
    assert await store.fire_alert("acc-low", event("b", now + 600)) is not None
    (alert,) = await store.list_alerts()
    assert alert.last_fired_at == to_datetime(now + 600)
    assert [e.subject for e in await store.alert_events()] == ["b", "a"]


@pytest.mark.server_store
async def test_deliveries_append_attempts_in_order(store: ServerStore) -> None:
    await store.set_alert(rule(webhook_url="https://hooks.test/x"))
    fired = await store.fire_alert("acc-low", event("a", time.time(), webhook=True))
    assert fired is not None and fired.delivery == "pending" and fired.attempts == []
    tries = [
        DeliveryAttempt(at=to_datetime(1.0), status_code=500, error="http 500", seconds=0.1),
        DeliveryAttempt(at=to_datetime(2.0), status_code=200, seconds=0.2),
    ]
    await store.record_delivery(fired.id, tries[0], "pending")
    await store.record_delivery(fired.id, tries[1], "delivered")
    (stored,) = await store.alert_events("acc-low")
    assert stored.attempts == tries and stored.delivery == "delivered"
    with pytest.raises(NotFound, match="alert event 999999"):
        await store.record_delivery(999_999, tries[0], "failed")


@pytest.mark.server_store
async def test_a_queued_delivery_is_claimed_by_one_caller_until_its_lease_ends(
    store: ServerStore,
) -> None:
    await store.set_alert(rule(webhook_url="https://hooks.test/x", secret="k"))
    body = {"text": "acc-low fired"}
    fired = await store.fire_alert(
        "acc-low", event("a", time.time(), webhook=True).model_copy(update={"payload": body})
    )
    assert fired is not None and fired.delivery == "pending"
    now = time.time()
    (claimed,) = await store.claim_deliveries(now, now + 60, 10)
    assert (claimed.event_id, claimed.alert, claimed.url) == (
        fired.id,
        "acc-low",
        "https://hooks.test/x",
    )
    assert (claimed.payload, claimed.secret, claimed.attempt) == (body, "k", 1)
    assert await store.claim_deliveries(now + 59, now + 120, 10) == []  # leased
    (again,) = await store.claim_deliveries(now + 61, now + 120, 10)  # the lease ran out
    assert again.attempt == 2
    failed = DeliveryAttempt(at=to_datetime(now), status_code=503, error="http 503", seconds=0.1)
    await store.record_delivery(fired.id, failed, "pending", now + 300)
    assert await store.pending_deliveries() == (1, now + 300)
    assert await store.claim_deliveries(now + 299, now + 400, 10) == []
    ok = DeliveryAttempt(at=to_datetime(now + 300), status_code=200, seconds=0.1)
    await store.record_delivery(fired.id, ok, "delivered")
    assert await store.pending_deliveries() == (0, None)
    (stored,) = await store.alert_events()
    assert stored.delivery == "delivered" and stored.attempts == [failed, ok]


@pytest.mark.server_store
async def test_events_without_a_webhook_queue_nothing(store: ServerStore) -> None:
    await store.set_alert(rule())
    await store.fire_alert("acc-low", event("a", time.time(), webhook=True))  # rule has no URL
    assert await store.pending_deliveries() == (0, None)
    assert await store.claim_deliveries(time.time(), time.time() + 60, 10) == []


@pytest.mark.server_store
async def test_error_bodies_recorded_by_older_versions_are_not_shown(store: ServerStore) -> None:
    await store.set_alert(rule(webhook_url="https://hooks.test/x"))
    fired = await store.fire_alert("acc-low", event("a", time.time(), webhook=True))
    assert fired is not None
    for old in ("HTTP 500: password=hunter2", "ConnectError: https://hooks.test/x/token"):
        attempt = DeliveryAttempt(at=to_datetime(1.0), error=old, seconds=0.1)
        await store.record_delivery(fired.id, attempt, "pending")
    (stored,) = await store.alert_events()
    assert [a.error for a in stored.attempts] == ["http 500", "ConnectError"]


@pytest.mark.server_store
async def test_events_list_newest_first_per_rule_and_limited(store: ServerStore) -> None:
    await store.set_alert(rule("one"))
    await store.set_alert(rule("two"))
    for i in range(3):
        await store.fire_alert("one", event(f"r{i}", 100.0 + i))
    await store.fire_alert("two", event("r9", 50.0))
    assert [e.subject for e in await store.alert_events("one")] == ["r2", "r1", "r0"]
    assert [e.subject for e in await store.alert_events(limit=2)] == ["r2", "r1"]
    assert [e.alert for e in await store.alert_events()][-1] == "two"


@pytest.mark.server_store
async def test_deleting_a_rule_deletes_its_events(store: ServerStore) -> None:
    await store.set_alert(rule())
    await store.fire_alert("acc-low", event("a", 1.0))
    await store.delete_alert("acc-low")
    assert await store.list_alerts() == [] and await store.alert_events() == []
    with pytest.raises(NotFound, match=r"alert 'acc-low' not found \(alerts: none\)"):
        await store.delete_alert("acc-low")


@pytest.mark.server_store
async def test_unknown_rules_raise_not_found_listing_the_rules(store: ServerStore) -> None:
    await store.set_alert(rule())
    for call in (
        store.get_alert("nope"),
        store.alert_events("nope"),
        store.fire_alert("nope", event("a", 1.0)),
    ):
        with pytest.raises(NotFound, match=r"alert 'nope' not found \(alerts: acc-low\)"):
            await call


@pytest.mark.server_store
async def test_stale_experiments_by_last_completed_run(store: ServerStore) -> None:
    now = time.time()
    done = await new_run(store, now - 7200)
    await store.end_run(done, "completed", None, now - 7000)
    failed = await new_run(store, now - 10)
    await store.end_run(failed, "failed", "boom", now - 5)  # a failed run does not count
    await new_run(store, now, experiment="fresh")  # created now, nothing completed yet
    (stale,) = await store.stale_experiments(None, now - 3600)
    assert (stale.experiment, stale.last_run_id) == ("mnist", done)
    assert stale.last_completed_at == to_datetime(now - 7000)
    assert await store.stale_experiments("mnist", now - 8000) == []
    (never,) = await store.stale_experiments("fresh", now + 1)
    assert never.last_run_id is None and never.last_completed_at is None


@pytest.mark.server_store
async def test_silent_runs_by_latest_metric_point(store: ServerStore) -> None:
    now = time.time()
    quiet = await new_run(store, now - 3600)
    busy = await new_run(store, now - 3600)
    await store.log_metrics([make_chunk(busy, "loss", [(0, 1.0, now - 60)])])
    ended = await new_run(store, now - 3600)
    await store.end_run(ended, "completed", None, now - 3000)
    (silent,) = await store.silent_runs(None, now - 600)
    assert (silent.run_id, silent.experiment) == (quiet, "mnist")
    assert silent.last_activity == to_datetime(now - 3600)
    assert await store.silent_runs("other", now) == []
    assert {s.run_id for s in await store.silent_runs("mnist", now)} == {quiet, busy}


@pytest.mark.server_store
async def test_migration_copies_rules_with_their_events_once(
    store: ServerStore, tmp_path: Path
) -> None:
    await store.set_alert(rule(webhook_url="https://hooks.test/x", secret="k", cooldown=60))
    await store.set_alert(rule("quiet", kind="no_completed_run", window_seconds=3600.0))
    fired = await store.fire_alert("acc-low", event("a", 100.0, webhook=True))
    assert fired is not None
    attempt = DeliveryAttempt(at=to_datetime(101.0), status_code=200, seconds=0.1)
    await store.record_delivery(fired.id, attempt, "delivered")
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    target = as_sql_store(await open_store(target_url), target_url)
    try:
        source = as_sql_store(store, store.url)
        report = await migrate(source, target)
        assert (report.copied["alerts"], report.copied["alert_events"]) == (2, 1)
        assert await target.list_alerts() == await store.list_alerts()
        assert await target.alert_events() == await store.alert_events()
        again = await migrate(source, target, merge=True)
        assert again.skipped_alerts == 2 and "alerts" not in again.copied
        await store.fire_alert("acc-low", event("b", 200.0))
        with pytest.raises(Conflict, match="alert 'acc-low' exists in both stores"):
            await migrate(source, target, merge=True)
    finally:
        await target.close()
