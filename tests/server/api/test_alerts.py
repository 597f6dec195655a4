"""The alert write API's mute and test-fire endpoints, in process, in team mode (both backends).

Defining, reading and checking rules over HTTP is covered through the remote store
(:mod:`tests.client.remote.test_tracking`, the contract suite) and the Alerts page's tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from chachaml.server.access import AccessConfig
from chachaml.server.api.routes import ApiConfig
from chachaml.server.app import create_app
from chachaml.server.tokens import create_token
from chachaml.store import ServerStore
from chachaml.tools import alerts as alert_ops
from chachaml.tools.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Delivery, signature
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.anyio
TOKEN = "ada-write-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = Delivery(timeout=0.5, attempts=2, backoff=0.01, allow_private=True)
RULE = {"name": "acc-low", "kind": "threshold", "metric_key": "accuracy", "op": "<",
        "threshold": 0.8}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
async def api(store: ServerStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, api=ApiConfig(delivery=FAST),
                     access=AccessConfig(tokens=(("ada", TOKEN, "write"),)))  # fmt: skip
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


def _error(answer: httpx.Response) -> str:
    message: str = answer.json()["error"]["message"]
    return message


async def test_mute_and_unmute_keep_the_rules_webhook_and_secret(
    api: httpx.AsyncClient, store: ServerStore
) -> None:
    rule = {**RULE, "webhook_url": "https://hooks.test/T/B/token", "secret": "s3"}
    assert (await api.post("/api/w/alerts", json=rule, headers=AUTH)).status_code == 200
    muted = await api.post("/api/w/alerts/mute", json={"name": "acc-low"}, headers=AUTH)
    assert muted.status_code == 200, muted.text
    assert muted.json()["muted"] is True and "token" not in muted.text
    (listed,) = (await api.get("/api/store/v1/alerts", headers=AUTH)).json()["alerts"]
    assert listed["muted"] is True and listed["signed"] is True
    stored = await store.get_alert("acc-low")
    assert (stored.webhook_url, stored.secret) == ("https://hooks.test/T/B/token", "s3")
    back = await api.post("/api/w/alerts/mute", json={"name": "acc-low", "muted": False},
                          headers=AUTH)  # fmt: skip
    assert back.json()["muted"] is False and not (await store.get_alert("acc-low")).muted


async def test_test_fire_answers_with_each_attempt_and_records_nothing(
    api: httpx.AsyncClient, store: ServerStore, receiver: Receiver
) -> None:
    rule = {**RULE, "webhook_url": receiver.url, "secret": "s3"}
    assert (await api.post("/api/w/alerts", json=rule, headers=AUTH)).status_code == 200
    receiver.script[:] = [503, 200]
    answer = await api.post("/api/w/alerts/test", json={"name": "acc-low"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    trial = answer.json()
    assert (trial["alert"], trial["webhook"], trial["delivered"]) == (
        "acc-low",
        "http://127.0.0.1/…",
        True,
    )
    assert [(a["status_code"], a["error"]) for a in trial["attempts"]] == [
        (503, "http 503"),
        (200, None),
    ]
    hit = receiver.received[-1]
    assert hit.json == trial["payload"] and hit.json["test"] is True
    assert hit.headers[SIGNATURE_HEADER] == signature("s3", hit.headers[TIMESTAMP_HEADER],
                                                      hit.body)  # fmt: skip
    assert await alert_ops.alert_history(store) == []
    receiver.script[:] = [500, 500]
    failed = (await api.post("/api/w/alerts/test", json={"name": "acc-low"}, headers=AUTH)).json()
    assert failed["delivered"] is False and len(failed["attempts"]) == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/w/alerts/mute", {"name": "nope"}, 404, "alert 'nope' not found (alerts: acc-low)"),
        ("/api/w/alerts/test", {"name": "nope"}, 404, "alert 'nope' not found (alerts: acc-low)"),
        ("/api/w/alerts/test", {"name": "acc-low"}, 422, "has no webhook to test"),
        ("/api/w/alerts/mute", {"name": "acc-low", "muted": "maybe"}, 422, "muted"),
        ("/api/w/alerts/mute", {"name": ""}, 422, "name"),
        ("/api/w/alerts/test", {}, 422, "name"),
        ("/api/w/alerts/test", {"name": "acc-low", "surprise": 1}, 422, "surprise"),
    ],
)
async def test_bad_requests_are_clear_4xx_never_500(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, words: str
) -> None:
    assert (await api.post("/api/w/alerts", json=RULE, headers=AUTH)).status_code == 200
    answer = await api.post(path, json=body, headers=AUTH)
    assert answer.status_code == status, answer.text
    assert words in answer.text


@pytest.mark.parametrize("path", ["/api/w/alerts/mute", "/api/w/alerts/test"])
async def test_both_need_a_write_token(
    api: httpx.AsyncClient, store: ServerStore, path: str
) -> None:
    assert (await api.post("/api/w/alerts", json=RULE, headers=AUTH)).status_code == 200
    anonymous = await api.post(path, json={"name": "acc-low"})
    assert anonymous.status_code == 401
    reader, _ = await create_token(store, "rita", "read")
    read = await api.post(path, json={"name": "acc-low"},
                          headers={"Authorization": f"Bearer {reader}"})  # fmt: skip
    assert read.status_code == 403 and "read scope" in _error(read)
    assert not (await store.get_alert("acc-low")).muted


async def test_the_openapi_document_lists_both(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/api/openapi.json", headers=AUTH)).json()["paths"]
    assert paths["/api/w/alerts/mute"]["post"]["summary"].startswith("Mute or unmute a rule")
    test = paths["/api/w/alerts/test"]["post"]
    assert test["summary"].startswith("Send the rule's webhook a test event")
    assert {"200", "401", "403", "404", "422"} <= set(test["responses"])
