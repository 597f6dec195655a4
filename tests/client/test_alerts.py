"""The alerts API from Python: rules evaluated when runs end, never failing them (both backends)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import chachaml
from chachaml.cli.stores import cmd_alerts
from chachaml.client.alerts import Alerts
from chachaml.client.client import Client
from chachaml.errors import InvalidInput, NotFound
from chachaml.store.protocol import Store
from chachaml.tools import alerts as alert_ops
from chachaml.tools.webhooks import Delivery
from tests.conftest import make_settings
from tests.support.webhook_receiver import HANG, Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[Client]:
    """A client allowed to set webhooks on private addresses (the receiver is on 127.0.0.1)."""
    settings = make_settings(webhook_allow_private=True)
    c = Client(store=store_url, artifacts=str(tmp_path / "artifacts"), settings=settings)
    try:
        yield c
    finally:
        c.close()


def deliver(client: Client) -> int:
    """``chachaml alerts deliver`` with this client's settings: the queue, sent once."""
    return cmd_alerts(argparse.Namespace(), client)


def bad_then_good(client: Client, experiment: str = "mnist") -> tuple[str, str]:
    with client.run(experiment) as bad:
        client.log_metric("accuracy", 0.95)
        client.log_metric("accuracy", 0.5)  # the latest value counts, not the best
    with client.run(experiment) as good:
        client.log_metric("accuracy", 0.9)
    return bad.id, good.id


def test_a_run_that_ends_bad_fires_once_and_a_good_one_never(
    client: Client, receiver: Receiver
) -> None:
    api = Alerts(client)
    api.set_threshold_alert(
        "acc-low", "accuracy", "<", 0.8, experiment="mnist", webhook_url=receiver.url
    )
    bad, _ = bad_then_good(client)
    assert receiver.received == []  # the training process only queues
    (queued,) = api.alert_history("acc-low")
    assert queued.delivery == "pending"

    assert deliver(client) == 0
    (hit,) = receiver.received
    assert bad in hit.json["text"]
    (event,) = api.alert_history("acc-low")
    assert (event.run_id, event.value, event.delivery) == (bad, 0.5, "delivered")
    assert api.check_alerts() == []
    assert len(receiver.received) == 1


def test_a_hanging_webhook_never_fails_the_run(
    store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script[:] = [HANG, HANG]
    settings = make_settings(alert_timeout=0.3, alert_attempts=2, webhook_allow_private=True)
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=settings)
    try:
        Alerts(client).set_threshold_alert("low", "accuracy", "<", 0.8, webhook_url=receiver.url)
        started = time.monotonic()
        with client.run("mnist") as run:
            client.log_metric("accuracy", 0.1)
        assert time.monotonic() - started < 5
        assert client.get_run(run.id).status == "completed"
        assert deliver(client) == 1
        (event,) = Alerts(client).alert_history()
        assert event.delivery == "failed"
        assert [a.error for a in event.attempts] == ["timeout"] * 2
    finally:
        client.close()


def test_a_webhook_answering_500_is_retried_and_the_failure_recorded(
    client: Client, receiver: Receiver
) -> None:
    receiver.script[:] = [500, 500, 500]
    Alerts(client).set_threshold_alert("low", "accuracy", "<", 0.8, webhook_url=receiver.url)
    with client.run("mnist") as run:
        client.log_metric("accuracy", 0.1)
    assert client.get_run(run.id).status == "completed"
    assert deliver(client) == 1
    (event,) = Alerts(client).alert_history("low")
    assert event.delivery == "failed"
    assert [a.status_code for a in event.attempts] == [500, 500, 500]
    assert len(receiver.received) == 3


def test_trouble_while_evaluating_is_logged_and_the_run_still_ends(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(store: Store, run_id: str, delivery: Delivery) -> None:
        raise RuntimeError("store on fire")

    monkeypatch.setattr(alert_ops, "evaluate_run", broken)
    with caplog.at_level(logging.WARNING, logger="chachaml"), client.run("mnist") as run:
        client.log_metric("accuracy", 0.1)
    assert client.get_run(run.id).status == "completed"
    assert f"evaluating alerts for run {run.id} failed: store on fire" in caplog.text


def test_a_run_that_fails_is_evaluated_too(client: Client) -> None:
    api = Alerts(client)
    api.set_threshold_alert("loss-high", "loss", ">", 10)
    with pytest.raises(ValueError, match="diverged"), client.run("mnist") as run:
        client.log_metric("loss", 1e6)
        raise ValueError("diverged")
    (event,) = api.alert_history()
    assert event.run_id == run.id and client.get_run(run.id).status == "failed"


def test_rules_are_listed_replaced_by_name_and_deleted(client: Client) -> None:
    api = Alerts(client)
    api.set_threshold_alert(
        "acc-low", "accuracy", "<", 0.8, webhook_url="https://hooks.test/T/B/token"
    )
    replaced = api.set_threshold_alert("acc-low", "accuracy", "<=", 0.7, cooldown_minutes=5)
    stale = api.set_stale_alert("quiet", experiment="mnist", no_completed_run_hours=24)
    assert api.alerts() == [replaced, stale]
    assert (replaced.op, replaced.threshold, replaced.webhook) == ("<=", 0.7, None)
    assert replaced.cooldown_seconds == 300 and replaced.created_by == "tester"
    assert stale.kind == "no_completed_run" and stale.window_seconds == 24 * 3600
    api.delete_alert("acc-low")
    assert [a.name for a in api.alerts()] == ["quiet"]
    with pytest.raises(NotFound, match=r"alert 'acc-low' not found \(alerts: quiet\)"):
        api.delete_alert("acc-low")
    with pytest.raises(NotFound, match="acc-low"):
        api.alert_history("acc-low")


def test_listed_webhooks_show_only_their_host(client: Client) -> None:
    api = Alerts(client)
    shown = api.set_threshold_alert(
        "low", "accuracy", "<", 0.8, webhook_url="https://hooks.test/T/B/token"
    )
    assert shown.webhook == "https://hooks.test/…"
    assert "token" not in api.alerts()[0].model_dump_json()


def test_bad_rules_are_refused_at_set_alert(client: Client) -> None:
    api = Alerts(client)
    with pytest.raises(InvalidInput, match="http:// or https://"):
        api.set_threshold_alert("low", "accuracy", "<", 0.8, webhook_url="file:///etc/passwd")
    with pytest.raises(InvalidInput, match="op must be one of"):
        api.set_threshold_alert("low", "accuracy", "<>", 0.8)
    assert api.alerts() == []


def test_a_muted_rule_is_listed_muted_and_fires_nothing_until_unmuted(client: Client) -> None:
    api = Alerts(client)
    api.set_threshold_alert("acc-low", "accuracy", "<", 0.8)
    assert api.mute_alert("acc-low").muted is True
    assert [(a.name, a.muted) for a in api.alerts()] == [("acc-low", True)]
    bad, _ = bad_then_good(client)
    assert api.alert_history() == [] and api.check_alerts() == []
    api.set_threshold_alert("acc-low", "accuracy", "<", 0.9)  # set again: still muted
    assert api.alerts()[0].muted
    assert api.unmute_alert("acc-low").muted is False
    assert [e.run_id for e in api.check_alerts()] == [bad]
    with pytest.raises(NotFound, match=r"alert 'nope' not found \(alerts: acc-low\)"):
        api.mute_alert("nope")
    with pytest.raises(NotFound, match="alert 'nope' not found"):
        api.unmute_alert("nope")


def test_send_test_alert_reaches_the_webhook_now_and_records_nothing(
    store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(webhook_allow_private=True, alert_attempts=2, alert_timeout=1.0)
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=settings)
    try:
        api = Alerts(client)
        api.set_threshold_alert("acc-low", "accuracy", "<", 0.8, webhook_url=receiver.url,
                                secret="s3")  # fmt: skip
        receiver.script[:] = [500, 200]
        trial = api.send_test_alert("acc-low")
        assert isinstance(trial, chachaml.AlertTrial)
        assert trial.delivered and [a.status_code for a in trial.attempts] == [500, 200]
        assert receiver.received[-1].json == trial.payload and trial.payload["test"] is True
        assert api.alert_history() == [] and api.alerts()[0].last_fired_at is None
        receiver.script[:] = [500, 500]
        assert api.send_test_alert("acc-low").delivered is False  # an answer, not an error
        api.set_stale_alert("quiet", no_completed_run_hours=1)
        with pytest.raises(InvalidInput, match="has no webhook to test"):
            api.send_test_alert("quiet")
        with pytest.raises(NotFound, match="alert 'nope' not found"):
            api.send_test_alert("nope")
    finally:
        client.close()


def test_the_module_level_alert_functions_use_the_default_client() -> None:
    import chachaml.client.alerts as alerts_module

    for name in (
        "set_threshold_alert",
        "set_drop_alert",
        "set_stale_alert",
        "set_silent_alert",
        "delete_alert",
        "mute_alert",
        "unmute_alert",
        "send_test_alert",
        "check_alerts",
        "alert_history",
    ):
        bound = getattr(chachaml, name)
        assert isinstance(bound.__self__, Alerts)
        assert bound.__self__.client is chachaml.default_client()
    listing = alerts_module.alerts
    assert isinstance(getattr(listing, "__self__", None), Alerts)
    assert chachaml.client.alerts is alerts_module  # the submodule stays importable
