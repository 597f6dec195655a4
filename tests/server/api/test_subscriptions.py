"""Webhook subscriptions over the write API, in process (both backends): what a server
refuses and what it answers. Admin-only in team mode is in :mod:`tests.server.test_access`;
delivery itself in :mod:`tests.tools.test_subscriptions`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from chachaml.server.api.routes import ApiConfig
from chachaml.server.app import create_app
from chachaml.store import ServerStore
from chachaml.tools.webhooks import EVENT_HEADER, Delivery
from tests.support.waiting import await_for
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.anyio
PUBLIC = "https://93.184.216.34/hooks/T0/secret-path"  # an IP literal: no DNS asked


@pytest.fixture
async def api(store: ServerStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, api=ApiConfig(delivery=Delivery()))  # private targets refused
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


async def test_subscribe_list_and_unsubscribe_over_http(api: httpx.AsyncClient) -> None:
    made = await api.post(
        "/api/w/subscriptions", json={"url": PUBLIC, "types": ["run.*"], "secret": "s3"}
    )
    assert made.status_code == 200, made.text
    sub = made.json()
    assert (sub["target"], sub["types"], sub["signed"]) == ("https://93.184.216.34/…", ["run.*"],
                                                            True)  # fmt: skip
    assert "secret-path" not in made.text and "s3" not in made.text
    listed = (await api.get("/api/store/v1/subscriptions")).json()["subscriptions"]
    assert [s["id"] for s in listed] == [sub["id"]]
    gone = await api.post("/api/w/subscriptions/delete", json={"id": sub["id"]})
    assert gone.status_code == 200 and gone.json() == {"ok": True}
    again = await api.post("/api/w/subscriptions/delete", json={"id": sub["id"]})
    assert again.status_code == 404 and "not found" in again.json()["error"]["message"]
    assert (await api.get("/api/store/v1/subscriptions")).json() == {"subscriptions": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://hooks.test/x"}, "http:// or https://"),
        ({"url": "http://127.0.0.1:9/hook"}, "not a public address"),
        ({"url": "http://localhost/hook"}, "loopback name"),
        ({"url": PUBLIC, "types": ["runs.*"]}, "matches no event type"),
        ({"url": PUBLIC, "types": ["run.ended;"]}, "may hold only"),
        ({"url": PUBLIC, "types": []}, "at least one"),
        ({"url": PUBLIC, "secret": ""}, "secret"),
        ({"url": PUBLIC, "colour": "red"}, "colour"),
        ({"types": ["run.*"]}, "url"),
    ],
)
async def test_bad_subscriptions_are_a_422_that_says_why(
    api: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    answer = await api.post("/api/w/subscriptions", json=body)
    assert answer.status_code == 422, answer.text
    assert message in answer.text
    assert (await api.get("/api/store/v1/subscriptions")).json() == {"subscriptions": []}


async def test_the_servers_own_worker_sends_what_a_subscription_asked_for(
    store: ServerStore,
) -> None:
    local = Delivery(timeout=1, attempts=2, backoff=0.01, allow_private=True)
    app = create_app(store, api=ApiConfig(delivery=local))
    with webhook_receiver() as receiver:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                body = {"url": receiver.url, "types": ["run.started"]}
                assert (await c.post("/api/w/subscriptions", json=body)).status_code == 200
                made = await c.post("/api/w/runs", json={"experiment": "mnist"})
                assert made.status_code == 201, made.text

                async def arrived() -> bool:
                    return bool(receiver.received)

                await await_for(arrived)  # woken by the commit, not a poll
        (hit,) = receiver.received
    assert hit.json["type"] == "run.started" and hit.json["runid"] == made.json()["id"]
    assert hit.headers[EVENT_HEADER] == hit.json["id"]


async def test_unsubscribing_a_bad_id_is_a_422(api: httpx.AsyncClient) -> None:
    for body in ({"id": 0}, {"id": "one"}, {}):
        answer = await api.post("/api/w/subscriptions/delete", json=body)
        assert answer.status_code == 422, answer.text
