"""Test-firing a rule against a real webhook receiver: over a database, and over a remote store
whose server sends it (both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chachaml.client.remote import RemoteStore
from chachaml.errors import InvalidInput, NotFound
from chachaml.store import ServerStore
from chachaml.tools import alerts as ops
from chachaml.tools.alert_trial import send_test_alert
from chachaml.tools.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Delivery, signature
from tests.support.remote_server import BASE_URL, InProcessServer
from tests.support.webhook_receiver import Receiver, refused_url, webhook_receiver

pytestmark = pytest.mark.anyio

# the receiver runs on 127.0.0.1: private targets are allowed explicitly
FAST = Delivery(base_url="http://ui.test", timeout=0.5, attempts=3, backoff=0.01,
                allow_private=True)  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


async def set_rule(
    store: ServerStore | RemoteStore,
    name: str,
    webhook_url: str | None = None,
    *,
    secret: str | None = None,
    muted: bool | None = None,
) -> None:
    rule = ops.build_rule(name, "tester", metric_key="accuracy", op="<", threshold=0.8,
                          webhook_url=webhook_url, secret=secret, muted=muted)  # fmt: skip
    await ops.set_alert(store, rule, allow_private=True)


async def test_a_test_event_is_marked_signed_retried_and_recorded_nowhere(
    store: ServerStore, receiver: Receiver
) -> None:
    await set_rule(store, "acc-low", receiver.url, secret="s3")
    receiver.script[:] = [503, 200]
    trial = await send_test_alert(store, "acc-low", FAST)
    assert (trial.alert, trial.webhook, trial.delivered) == ("acc-low", "http://127.0.0.1/…", True)
    assert [(a.status_code, a.error) for a in trial.attempts] == [(503, "http 503"), (200, None)]
    first, hit = receiver.received
    assert first.body == hit.body  # a retry sends the same body
    assert hit.json == trial.payload
    assert hit.json["test"] is True and hit.json["text"].startswith("[test] chachaml alert")
    stamp = hit.headers[TIMESTAMP_HEADER]
    assert hit.headers[SIGNATURE_HEADER] == signature("s3", stamp, hit.body)
    assert await ops.alert_history(store) == []
    rule = await store.get_alert("acc-low")
    assert rule.last_fired_at is None


async def test_a_dead_webhook_is_an_answer_and_a_client_error_is_not_retried(
    store: ServerStore, receiver: Receiver
) -> None:
    await set_rule(store, "dead", refused_url())
    dead = await send_test_alert(store, "dead", FAST)
    assert dead.delivered is False
    assert [a.error for a in dead.attempts] == ["connection refused"] * 3
    await set_rule(store, "gone", receiver.url)
    receiver.script[:] = [404]
    gone = await send_test_alert(store, "gone", FAST)
    assert (gone.delivered, [a.status_code for a in gone.attempts]) == (False, [404])


async def test_a_muted_rule_can_still_be_test_fired(store: ServerStore, receiver: Receiver) -> None:
    # muting stops evaluation; checking the webhook before unmuting is the point of a test
    await set_rule(store, "acc-low", receiver.url, muted=True)
    assert (await send_test_alert(store, "acc-low", FAST)).delivered
    assert len(receiver.received) == 1


async def test_an_unknown_rule_is_not_found_and_one_without_a_webhook_invalid(
    store: ServerStore,
) -> None:
    await set_rule(store, "quiet")
    with pytest.raises(NotFound, match=r"alert 'nope' not found \(alerts: quiet\)"):
        await send_test_alert(store, "nope", FAST)
    with pytest.raises(InvalidInput, match="has no webhook to test"):
        await send_test_alert(store, "quiet", FAST)
    with pytest.raises(InvalidInput, match="alert name"):
        await send_test_alert(store, "", FAST)


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[RemoteStore]:
    """A remote store whose server (in this process) may deliver to loopback receivers."""
    server = InProcessServer(tmp_path / "s.db", tmp_path / "a", delivery=FAST)
    opened = await RemoteStore.open(BASE_URL, transport=server)
    try:
        yield opened
    finally:
        await opened.close()


async def test_over_a_remote_store_the_server_sends_it_with_its_own_settings(
    remote: RemoteStore, receiver: Receiver
) -> None:
    await set_rule(remote, "acc-low", receiver.url, secret="s3")
    # the caller's delivery would refuse the loopback receiver; the server's allows it
    trial = await send_test_alert(remote, "acc-low", Delivery())
    assert trial.delivered and [a.status_code for a in trial.attempts] == [200]
    (hit,) = receiver.received
    assert hit.json == trial.payload
    assert hit.headers[SIGNATURE_HEADER] == signature("s3", hit.headers[TIMESTAMP_HEADER],
                                                      hit.body)  # fmt: skip
    assert await ops.alert_history(remote) == []
    with pytest.raises(NotFound, match="alert 'nope' not found"):
        await send_test_alert(remote, "nope", Delivery())
    await set_rule(remote, "quiet")
    with pytest.raises(InvalidInput, match="has no webhook to test"):
        await send_test_alert(remote, "quiet", Delivery())
