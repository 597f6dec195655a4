"""Alert rules evaluated over every backend, delivered to a real webhook receiver on loopback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.alerts import AlertEvent
from chachaml.records.registry import NewModelVersion
from chachaml.records.runs import ArtifactRecord, NewRun
from chachaml.settings import Settings
from chachaml.store import ServerStore, Store
from chachaml.store.codec import make_chunk
from chachaml.tools import alerts as ops
from chachaml.tools.deliveries import drain_deliveries
from chachaml.tools.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Delivery, signature
from tests.support.webhook_receiver import HANG, Receiver, refused_url, webhook_receiver

pytestmark = pytest.mark.anyio

# the receiver runs on 127.0.0.1: private targets are allowed explicitly
FAST = Delivery(base_url="http://ui.test", timeout=0.5, attempts=3, backoff=0.01,
                allow_private=True)  # fmt: skip


@pytest.fixture
def store_url(tracking_store_url: str) -> str:
    """This module's ``client`` tests also run against a server (in this process)."""
    return tracking_store_url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


async def add_run(
    store: Store,
    metrics: dict[str, float],
    *,
    experiment: str = "mnist",
    started: float | None = None,
    end: bool = True,
) -> str:
    run_id = uuid.uuid4().hex
    at = time.time() if started is None else started
    new = NewRun(
        id=run_id,
        experiment=experiment,
        name=None,
        created_by="tester",
        started_at=at,
        heartbeat_timeout=3600.0,
    )
    await store.create_run(new)
    chunks = [make_chunk(run_id, k, [(0, val, at + 1)]) for k, val in metrics.items()]
    await store.log_metrics(chunks)
    if end:
        await store.end_run(run_id, "completed", None, at + 2)
    return run_id


async def set_rule(store: ServerStore, name: str = "acc-low", **kwargs: Any) -> None:
    await ops.set_alert(store, ops.build_rule(name, "tester", **kwargs), allow_private=True)


async def delivered(store: ServerStore, delivery: Delivery = FAST) -> AlertEvent:
    """Run the queue's delivery (as a server's worker would); the one event, as stored now."""
    await drain_deliveries(store, delivery)
    (event,) = await ops.alert_history(store)
    return event


async def test_threshold_rule_fires_once_for_a_bad_run_and_never_for_a_good_one(
    store: ServerStore, receiver: Receiver
) -> None:
    await set_rule(
        store,
        metric_key="accuracy",
        op="<",
        threshold=0.8,
        experiment="mnist",
        webhook_url=receiver.url,
    )
    good = await add_run(store, {"accuracy": 0.9})
    bad = await add_run(store, {"accuracy": 0.5})

    assert await ops.evaluate_run(store, good, FAST) == []
    (fired,) = await ops.evaluate_run(store, bad, FAST)
    assert await ops.evaluate_run(store, bad, FAST) == []
    assert await ops.check_alerts(store, FAST) == []
    assert fired.delivery == "pending" and receiver.received == []  # queued, not sent

    event = await delivered(store)
    assert (event.run_id, event.value, event.threshold, event.delivery) == (
        bad,
        0.5,
        0.8,
        "delivered",
    )
    assert [a.status_code for a in event.attempts] == [200]
    (hit,) = receiver.received
    body = hit.json
    assert bad in body["text"] and "acc-low" in body["text"]
    fields = "\n".join(f["text"] for f in body["blocks"][2]["fields"])
    for expected in ("acc-low (threshold)", "mnist", "0.5", "accuracy < 0.8"):
        assert expected in fields
    assert f"http://ui.test/runs/{bad}" in fields
    assert body["blocks"][3]["elements"][0]["url"] == f"http://ui.test/runs/{bad}"
    assert hit.headers["Content-Type"] == "application/json"
    assert SIGNATURE_HEADER not in hit.headers
    (stored,) = await ops.alert_history(store, "acc-low")
    assert stored == event


async def test_rules_compare_the_latest_value_not_the_best(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8)
    run_id = await add_run(store, {"accuracy": 0.95}, end=False)
    await store.log_metrics([make_chunk(run_id, "accuracy", [(1, 0.6, time.time())])])
    (event,) = await ops.evaluate_run(store, run_id, FAST)
    assert event.value == 0.6 and event.delivery == "none"


async def test_each_threshold_op(store: ServerStore) -> None:
    run_id = await add_run(store, {"loss": 2.0})
    fires = {">": 1.0, ">=": 2.0, "<": 3.0, "<=": 2.0, "=": 2.0}
    quiet = {">": 2.0, ">=": 2.5, "<": 2.0, "<=": 1.5, "=": 2.5}
    for i, (op, limit) in enumerate(fires.items()):
        await set_rule(store, f"fires-{i}", metric_key="loss", op=op, threshold=limit)
    for i, (op, limit) in enumerate(quiet.items()):
        await set_rule(store, f"quiet-{i}", metric_key="loss", op=op, threshold=limit)
    fired = await ops.evaluate_run(store, run_id, FAST)
    assert sorted(e.alert for e in fired) == [f"fires-{i}" for i in range(5)]


async def test_a_rule_for_one_experiment_ignores_the_others(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, experiment="mnist")
    elsewhere = await add_run(store, {"accuracy": 0.1}, experiment="cifar")
    assert await ops.evaluate_run(store, elsewhere, FAST) == []


async def test_drop_against_the_mean_of_the_last_runs(
    store: ServerStore, receiver: Receiver
) -> None:
    t0 = time.time() - 1000
    for i, acc in enumerate([0.5, 0.9, 0.92, 0.88]):  # the oldest falls outside the last 3
        await add_run(store, {"accuracy": acc}, started=t0 + i)
    await set_rule(
        store,
        "acc-drop",
        metric_key="accuracy",
        drop_pct=10,
        baseline_runs=3,
        webhook_url=receiver.url,
    )
    slight = await add_run(store, {"accuracy": 0.85}, started=t0 + 10)
    assert await ops.evaluate_run(store, slight, FAST) == []
    big = await add_run(store, {"accuracy": 0.7}, started=t0 + 11)
    (fired,) = await ops.evaluate_run(store, big, FAST)
    assert fired.delivery == "pending"
    event = await delivered(store)
    mean = (0.92 + 0.88 + 0.85) / 3
    assert event.baseline == pytest.approx(mean)
    assert event.threshold == pytest.approx(mean * 0.9)
    assert "below" in event.message and event.delivery == "delivered"
    fields = str(receiver.received[0].json["blocks"])
    assert "Baseline" in fields and "drops more than 10%" in fields


async def test_drop_against_the_production_models_source_run(store: ServerStore) -> None:
    source = await add_run(store, {"accuracy": 0.9})
    await store.add_artifact(
        ArtifactRecord(
            run_id=source,
            name="model",
            content_type="application/octet-stream",
            serializer="bytes",
            size=1,
            sha256="a" * 64,
            uri="objects/aa/aa",
            created_at=time.time(),
        )
    )
    await store.register_model_version(
        NewModelVersion(
            model="mnist-cnn",
            run_id=source,
            artifact="model",
            stage="production",
            created_by="tester",
        )
    )
    await set_rule(store, metric_key="accuracy", drop_pct=5, baseline_model="mnist-cnn")
    assert await ops.evaluate_run(store, source, FAST) == []
    fine = await add_run(store, {"accuracy": 0.88})
    assert await ops.evaluate_run(store, fine, FAST) == []
    worse = await add_run(store, {"accuracy": 0.8})
    (event,) = await ops.evaluate_run(store, worse, FAST)
    assert event.baseline == 0.9 and "production version 1 of mnist-cnn" in event.message


async def test_a_rule_whose_baseline_model_is_missing_is_skipped(store: ServerStore) -> None:
    await set_rule(store, "gone", metric_key="accuracy", drop_pct=5, baseline_model="nope")
    await set_rule(store, "works", metric_key="accuracy", op="<", threshold=1.0)
    run_id = await add_run(store, {"accuracy": 0.5})
    assert [e.alert for e in await ops.evaluate_run(store, run_id, FAST)] == ["works"]


async def test_cooldown_holds_back_other_runs_until_it_passes(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, cooldown_minutes=10)
    first = await add_run(store, {"accuracy": 0.1})
    second = await add_run(store, {"accuracy": 0.2})
    now = time.time()
    assert len(await ops.evaluate_run(store, first, FAST, now=now)) == 1
    assert await ops.evaluate_run(store, second, FAST, now=now + 60) == []
    (later,) = await ops.evaluate_run(store, second, FAST, now=now + 601)
    assert later.run_id == second
    (rule,) = await ops.list_alerts(store)
    assert rule.last_fired_at is not None and rule.last_fired_at.timestamp() == pytest.approx(
        now + 601
    )


async def test_setting_a_rule_again_replaces_it_and_keeps_its_history(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8)
    run_id = await add_run(store, {"accuracy": 0.5})
    assert len(await ops.evaluate_run(store, run_id, FAST)) == 1
    await set_rule(
        store, metric_key="accuracy", op="<", threshold=0.3, webhook_url="https://x.test/a/b"
    )
    (rule,) = await ops.list_alerts(store)
    assert (rule.threshold, rule.webhook, rule.signed) == (0.3, "https://x.test/…", False)
    assert rule.created_at < rule.updated_at
    assert len(await ops.alert_history(store, "acc-low")) == 1


async def test_a_500_then_a_200_is_retried_and_recorded(
    store: ServerStore, receiver: Receiver
) -> None:
    receiver.script[:] = [500, 200]
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, webhook_url=receiver.url)
    run_id = await add_run(store, {"accuracy": 0.5})
    await ops.evaluate_run(store, run_id, FAST)
    event = await delivered(store)
    assert event.delivery == "delivered"
    assert [(a.status_code, a.error) for a in event.attempts] == [(500, "http 500"), (200, None)]
    assert len(receiver.received) == 2
    (stored,) = await ops.alert_history(store)
    assert stored.attempts == event.attempts and stored.delivery == "delivered"


async def test_a_hanging_webhook_times_out_and_is_recorded(
    store: ServerStore, receiver: Receiver
) -> None:
    receiver.script[:] = [HANG, HANG]
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, webhook_url=receiver.url)
    run_id = await add_run(store, {"accuracy": 0.5})
    quick = Delivery(timeout=0.2, attempts=2, backoff=0.01, allow_private=True)
    with anyio.fail_after(1):  # evaluation does not wait for the webhook
        await ops.evaluate_run(store, run_id, quick)
    with anyio.fail_after(5):
        event = await delivered(store, quick)
    assert event.delivery == "failed"
    assert [a.error for a in event.attempts] == ["timeout"] * 2
    assert all(a.status_code is None and a.seconds < 1 for a in event.attempts)


async def test_a_refused_connection_is_retried_then_recorded_as_failed(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, webhook_url=refused_url())
    run_id = await add_run(store, {"accuracy": 0.5})
    await ops.evaluate_run(store, run_id, FAST)
    event = await delivered(store)
    assert event.delivery == "failed" and len(event.attempts) == 3
    assert all(a.error == "connection refused" for a in event.attempts)
    (stored,) = await ops.alert_history(store)
    assert stored.delivery == "failed" and len(stored.attempts) == 3


async def test_a_client_error_is_not_retried(store: ServerStore, receiver: Receiver) -> None:
    receiver.script[:] = [404]
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, webhook_url=receiver.url)
    run_id = await add_run(store, {"accuracy": 0.5})
    await ops.evaluate_run(store, run_id, FAST)
    event = await delivered(store)
    assert event.delivery == "failed"
    assert [(a.status_code, a.error) for a in event.attempts] == [(404, "http 404")]


async def test_signed_deliveries_verify_at_the_receiver(
    store: ServerStore, receiver: Receiver
) -> None:
    await set_rule(
        store,
        metric_key="accuracy",
        op="<",
        threshold=0.8,
        webhook_url=receiver.url,
        secret="s3cret",
    )
    run_id = await add_run(store, {"accuracy": 0.5})
    await ops.evaluate_run(store, run_id, FAST)
    await delivered(store)
    (hit,) = receiver.received
    stamp = hit.headers[TIMESTAMP_HEADER]
    assert abs(int(stamp) - time.time()) < 60
    assert hit.headers[SIGNATURE_HEADER] == signature("s3cret", stamp, hit.body)
    assert hit.headers[SIGNATURE_HEADER] != signature("other", stamp, hit.body)
    (rule,) = await ops.list_alerts(store)
    assert rule.signed and "s3cret" not in rule.model_dump_json()


async def test_an_experiment_without_a_completed_run_fires_once_per_quiet_spell(
    store: ServerStore,
) -> None:
    now = time.time()
    await set_rule(store, "quiet", experiment="mnist", no_completed_run_hours=24)
    last = await add_run(store, {"accuracy": 0.9}, started=now - 10)
    assert await ops.check_alerts(store, FAST, now=now + 23 * 3600) == []
    (event,) = await ops.check_alerts(store, FAST, now=now + 25 * 3600)
    assert (event.experiment, event.run_id) == ("mnist", last)
    assert "no completed run for 24 h" in event.message
    assert await ops.check_alerts(store, FAST, now=now + 26 * 3600) == []
    newer = await add_run(store, {"accuracy": 0.9}, started=now + 27 * 3600)
    assert await ops.check_alerts(store, FAST, now=now + 28 * 3600) == []
    (again,) = await ops.check_alerts(store, FAST, now=now + 52 * 3600)
    assert again.run_id == newer


async def test_a_silent_running_run_fires_once(store: ServerStore, receiver: Receiver) -> None:
    now = time.time()
    await set_rule(store, "stuck", silent_minutes=30, webhook_url=receiver.url)
    stuck = await add_run(store, {"loss": 1.0}, started=now, end=False)
    await add_run(store, {"loss": 1.0}, started=now)  # ended: never silent
    assert await ops.check_alerts(store, FAST, now=now + 29 * 60) == []
    (event,) = await ops.check_alerts(store, FAST, now=now + 32 * 60)
    assert event.run_id == stuck and "logged nothing for 30 min" in event.message
    assert await ops.check_alerts(store, FAST, now=now + 60 * 60) == []
    assert (await delivered(store)).delivery == "delivered"
    assert "a running run silent for 30 min" in str(receiver.received[0].json["blocks"])


async def test_check_alerts_evaluates_recent_runs_for_metric_rules(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8)
    now = time.time()
    await add_run(store, {"accuracy": 0.5}, started=now - 10 * 24 * 3600)  # outside lookback
    recent = await add_run(store, {"accuracy": 0.5}, started=now - 60)
    (event,) = await ops.check_alerts(store, FAST, now=now)
    assert event.run_id == recent


async def test_deleting_a_rule_deletes_its_history(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8)
    await ops.evaluate_run(store, await add_run(store, {"accuracy": 0.5}), FAST)
    await ops.delete_alert(store, "acc-low")
    assert await ops.list_alerts(store) == [] and await ops.alert_history(store) == []
    with pytest.raises(NotFound, match="acc-low"):
        await ops.delete_alert(store, "acc-low")


async def test_unknown_alerts_are_not_found(store: ServerStore) -> None:
    with pytest.raises(NotFound, match="nope"):
        await ops.alert_history(store, "nope")
    with pytest.raises(NotFound, match="nope"):
        await ops.get_alert(store, "nope")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric_key": "acc", "op": "!=", "threshold": 1}, "op must be one of"),
        ({"metric_key": "acc", "op": "<"}, "needs both op= and threshold="),
        ({"op": "<", "threshold": 1}, "needs metric_key="),
        ({"metric_key": "acc", "op": "<", "threshold": float("nan")}, "threshold must be finite"),
        ({"metric_key": "acc", "op": "<", "threshold": 1, "drop_pct": 5}, "exactly one of"),
        ({}, "none of them"),
        ({"metric_key": "acc", "drop_pct": -5}, "drop_pct must be positive"),
        ({"metric_key": "acc", "drop_pct": 5, "baseline_runs": 0}, "baseline_runs must be"),
        (
            {"metric_key": "acc", "drop_pct": 5, "baseline_runs": 3, "baseline_model": "m"},
            "not both",
        ),
        ({"silent_minutes": 0}, "silent_minutes must be positive"),
        ({"silent_minutes": 5, "metric_key": "acc"}, "watches no metric"),
        ({"no_completed_run_hours": 5, "baseline_model": "m"}, "belong to drop_pct"),
        ({"silent_minutes": 5, "cooldown_minutes": -1}, "cooldown_minutes must be >= 0"),
        ({"silent_minutes": 5, "secret": "s"}, "give webhook_url= too"),
        ({"silent_minutes": 5, "webhook_url": "ftp://example.com/x"}, "http:// or https://"),
        ({"silent_minutes": 5, "webhook_url": "hooks.slack.com/x"}, "http:// or https://"),
        ({"silent_minutes": 5, "webhook_url": "javascript:alert(1)"}, "http:// or https://"),
        ({"silent_minutes": 5, "webhook_url": "https:///path"}, "http:// or https://"),
    ],
)
def test_invalid_rules_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ops.build_rule("bad", "tester", **kwargs)


def test_delivery_settings_come_from_the_environment() -> None:
    env = {
        "CHACHAML_BASE_URL": "https://ml.example.com/",
        "CHACHAML_ALERT_TIMEOUT_SECONDS": "2.5",
        "CHACHAML_ALERT_ATTEMPTS": "4",
    }
    delivery = Delivery.from_settings(Settings.from_env(env))
    assert (delivery.base_url, delivery.timeout, delivery.attempts) == (
        "https://ml.example.com",
        2.5,
        4,
    )
    assert Delivery.from_settings(Settings.from_env({})).base_url == "http://127.0.0.1:8080"


async def test_a_lookback_past_1970_checks_every_run_instead_of_failing(tmp_path: Path) -> None:
    from chachaml.store import open_store
    from chachaml.tools import alerts as alert_ops
    from chachaml.tools.webhooks import Delivery

    store = await open_store(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        rule = alert_ops.build_rule("low", "me", metric_key="acc", op="<", threshold=0.5)
        await alert_ops.set_alert(store, rule)
        fired = await alert_ops.check_alerts(store, Delivery(), lookback_hours=767_739.17)
        assert fired == []  # found in the fuzzing: a 500 before
    finally:
        await store.close()


async def test_a_muted_rule_is_kept_but_fires_nothing_until_unmuted(store: ServerStore) -> None:
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.8, muted=True)
    await set_rule(store, "quiet", silent_minutes=1, muted=True)
    run_id = await add_run(store, {"accuracy": 0.5}, end=False, started=time.time() - 3600)
    assert await ops.evaluate_run(store, run_id, FAST) == []
    assert await ops.check_alerts(store, FAST) == []
    assert [(r.name, r.muted) for r in await ops.list_alerts(store)] == [
        ("acc-low", True),
        ("quiet", True),
    ]
    # set again without muted= (as code that defines its rules at each start does): still muted
    await set_rule(store, metric_key="accuracy", op="<", threshold=0.9)
    assert (await ops.get_alert(store, "acc-low")).muted
    assert await ops.evaluate_run(store, run_id, FAST) == []
    assert (await ops.mute_alert(store, "acc-low", False)).muted is False
    (fired,) = await ops.evaluate_run(store, run_id, FAST)
    assert fired.alert == "acc-low"
    assert not (await ops.get_alert(store, "acc-low")).muted


async def test_muting_checks_its_arguments(store: ServerStore) -> None:
    await set_rule(store, "quiet", silent_minutes=1)
    with pytest.raises(NotFound, match=r"alert 'nope' not found \(alerts: quiet\)"):
        await ops.mute_alert(store, "nope", True)
    with pytest.raises(InvalidInput, match="muted must be true or false"):
        await ops.mute_alert(store, "quiet", "yes")  # type: ignore[arg-type]
    assert not (await ops.get_alert(store, "quiet")).muted


async def test_a_remote_store_has_its_server_mute_a_rule_keeping_its_webhook_and_secret(
    tmp_path: Path, receiver: Receiver
) -> None:
    from chachaml.client.remote import RemoteStore
    from chachaml.store import open_store
    from tests.support.remote_server import BASE_URL, InProcessServer

    server = InProcessServer(tmp_path / "s.db", tmp_path / "a", delivery=FAST)
    remote = await RemoteStore.open(BASE_URL, transport=server)
    own = await open_store(server.store_url)  # the server's database, opened beside it
    try:
        rule = ops.build_rule("acc-low", "tester", metric_key="accuracy", op="<",
                              threshold=0.8, webhook_url=receiver.url, secret="s3")  # fmt: skip
        await ops.set_alert(remote, rule, allow_private=True)
        muted = await ops.mute_alert(remote, "acc-low", True)
        assert muted.muted and muted.webhook == "http://127.0.0.1/…" and muted.signed
        assert [(a.name, a.muted) for a in await ops.list_alerts(remote)] == [("acc-low", True)]
        stored = await own.get_alert("acc-low")
        assert (stored.muted, stored.webhook_url, stored.secret) == (True, receiver.url, "s3")
        # the server evaluates rules when a run ends: a muted one fires nothing there
        run_id = await add_run(remote, {"accuracy": 0.5})
        assert await ops.alert_history(remote) == []
        assert not (await ops.mute_alert(remote, "acc-low", False)).muted
        stored = await own.get_alert("acc-low")
        assert (stored.muted, stored.webhook_url, stored.secret) == (False, receiver.url, "s3")
        fired = await ops.check_alerts(remote, FAST)
        assert [e.run_id for e in fired] == [run_id]
        with pytest.raises(NotFound, match="alert 'nope' not found"):
            await ops.mute_alert(remote, "nope", True)
    finally:
        await own.close()
        await remote.close()
