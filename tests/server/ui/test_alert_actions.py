"""Route tests for the Alerts page's writes: create, edit, mute, delete, test-fire a rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from chachaml.server.access import AccessConfig
from chachaml.server.api.routes import ApiConfig
from chachaml.server.app import create_app
from chachaml.server.tokens import create_token
from chachaml.store.server_state import ServerStore
from chachaml.tools import alerts as alert_ops
from chachaml.tools.webhooks import Delivery
from tests.support.webhook_receiver import Receiver, refused_url, webhook_receiver

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1"
SAME = {"Origin": BASE}
TOKEN = "ada-write-token"
RULE = {"name": "acc-low", "kind": "threshold", "metric_key": "accuracy", "op": "<",
        "threshold": "0.8"}  # fmt: skip
FAST = Delivery(timeout=0.5, attempts=3, backoff=0.01, allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


async def _client(store: ServerStore, access: AccessConfig) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, user="bo", access=access, api=ApiConfig(delivery=FAST))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def web(store: ServerStore) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(store, AccessConfig(local_user="bo")):
        yield client


@pytest.fixture
async def guarded(store: ServerStore) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(store, AccessConfig(tokens=(("ada", TOKEN),))):
        yield client


def _message(answer: httpx.Response) -> str:
    message: str = answer.json()["error"]["message"]
    return message


async def _create(web: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await web.post("/alerts/rules", json={**RULE, **fields}, headers=SAME)


async def test_a_rule_is_created_and_listed_on_the_page(web: httpx.AsyncClient) -> None:
    answer = await _create(web, experiment="mnist", cooldown_minutes="30")
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] is True
    (rule,) = (await web.get("/api/alerts")).json()["rules"]
    assert (rule["name"], rule["condition"], rule["experiment"]) == (
        "acc-low",
        "accuracy < 0.8",
        "mnist",
    )
    assert rule["cooldown_seconds"] == 1800 and rule["created_by"] == "bo"
    assert rule["form"]["cooldown_minutes"] == "30" and rule["form"]["threshold"] == "0.8"
    page = (await web.get("/alerts")).text
    assert "%22name%22%3A%20%22acc-low%22" in page and 'id="rule-form"' in page


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"threshold": "abc"}, "threshold", "must be a number"),
        ({"threshold": ""}, "threshold", "needs a threshold value"),
        ({"threshold": "inf"}, "threshold", "finite"),
        ({"metric_key": " "}, "metric_key", "needs a metric key"),
        ({"kind": "drop", "drop_pct": "x"}, "drop_pct", "must be a number"),
        ({"kind": "drop", "drop_pct": "5", "baseline_runs": "2.5"}, "baseline_runs", "whole"),
        ({"kind": "silent_run"}, "silent_minutes", "window in minutes"),
        ({"name": ""}, "name", "name"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(
    web: httpx.AsyncClient, fields: dict[str, str], field: str, words: str
) -> None:
    answer = await _create(web, **fields)
    assert answer.status_code == 422, answer.text
    assert words in _message(answer)
    assert answer.json()["error"]["fields"][0]["loc"] == ["body", field]
    assert (await web.get("/api/alerts")).json()["rules"] == []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"op": "!="}, "op"),
        ({"cooldown_minutes": "-1"}, "cooldown_minutes"),
        ({"webhook_url": "ftp://x"}, "webhook_url"),
        ({"secret": "s"}, "webhook_url"),
        ({"kind": "drop", "drop_pct": "-5"}, "drop_pct must be positive"),
    ],
)
async def test_rules_the_operations_refuse_are_422_with_their_message(
    web: httpx.AsyncClient, fields: dict[str, str], words: str
) -> None:
    answer = await _create(web, **fields)
    assert answer.status_code == 422, answer.text
    assert words in _message(answer)


async def test_a_taken_name_is_refused_on_create_and_edit_replaces(
    web: httpx.AsyncClient, store: ServerStore, receiver: Receiver
) -> None:
    assert (await _create(web, webhook_url=receiver.url, secret="s3")).status_code == 200
    again = await _create(web, threshold="0.5")
    assert again.status_code == 422 and "exists" in _message(again)
    edit = await _create(web, mode="edit", threshold="0.5", cooldown_minutes="")
    assert edit.status_code == 200, edit.text
    assert edit.json()["created"] is False
    stored = await store.get_alert("acc-low")
    # the webhook and secret the page never sees are kept by an edit
    assert (stored.threshold, stored.webhook_url, stored.secret) == (0.5, receiver.url, "s3")
    removed = await _create(web, mode="edit", remove_webhook=True)
    assert removed.status_code == 200, removed.text
    stored = await store.get_alert("acc-low")
    assert (stored.webhook_url, stored.secret) == (None, None)
    missing = await _create(web, mode="edit", name="nope")
    assert missing.status_code == 422 and "no rule named" in _message(missing)


async def test_mute_and_unmute(web: httpx.AsyncClient, store: ServerStore) -> None:
    await _create(web)
    answer = await web.post("/alerts/rules/mute", json={"name": "acc-low", "muted": True},
                            headers=SAME)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["alert"]["muted"] is True
    assert (await store.get_alert("acc-low")).muted
    page = (await web.get("/alerts")).text
    assert "muted-badge" in page and ">Unmute<" in page
    await web.post("/alerts/rules/mute", json={"name": "acc-low", "muted": False}, headers=SAME)
    assert not (await store.get_alert("acc-low")).muted
    gone = await web.post("/alerts/rules/mute", json={"name": "nope", "muted": True}, headers=SAME)
    assert gone.status_code == 404


async def test_delete(web: httpx.AsyncClient) -> None:
    await _create(web)
    answer = await web.post("/alerts/rules/delete", json={"name": "acc-low"}, headers=SAME)
    assert answer.status_code == 200
    assert (await web.get("/api/alerts")).json()["rules"] == []
    again = await web.post("/alerts/rules/delete", json={"name": "acc-low"}, headers=SAME)
    assert again.status_code == 404


async def test_test_fire_sends_a_marked_signed_event_and_records_nothing(
    web: httpx.AsyncClient, store: ServerStore, receiver: Receiver
) -> None:
    from chachaml.tools.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

    await _create(web, webhook_url=receiver.url, secret="s3")
    receiver.script[:] = [503, 200]
    answer = await web.post("/alerts/rules/test", json={"name": "acc-low"}, headers=SAME)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["delivered"] is True
    assert [(a["status_code"], a["error"]) for a in result["attempts"]] == [
        (503, "http 503"),
        (200, None),
    ]
    hit = receiver.received[-1]
    assert hit.json["test"] is True and hit.json["text"].startswith("[test] ")
    stamp = hit.headers[TIMESTAMP_HEADER]
    assert hit.headers[SIGNATURE_HEADER] == signature("s3", stamp, hit.body)
    assert await alert_ops.alert_history(store) == []
    assert (await store.get_alert("acc-low")).last_fired_at is None


async def test_test_fire_reports_a_failed_delivery_and_a_missing_webhook(
    web: httpx.AsyncClient,
) -> None:
    await _create(web, webhook_url=refused_url())
    failed = (await web.post("/alerts/rules/test", json={"name": "acc-low"}, headers=SAME)).json()
    assert failed["delivered"] is False and len(failed["attempts"]) == 3
    assert {a["error"] for a in failed["attempts"]} == {"connection refused"}
    await _create(web, name="quiet")
    none = await web.post("/alerts/rules/test", json={"name": "quiet"}, headers=SAME)
    assert none.status_code == 422 and "no webhook" in _message(none)


ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("/alerts/rules", RULE),
    ("/alerts/rules/mute", {"name": "acc-low", "muted": True}),
    ("/alerts/rules/delete", {"name": "acc-low"}),
]


@pytest.mark.parametrize(("path", "body"), ACTIONS)
@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Referer": "http://evil.example/alerts"},
     {"Sec-Fetch-Site": "cross-site"}],
)  # fmt: skip
async def test_cross_site_requests_are_403(
    web: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    answer = await web.post(path, json=body, headers=headers)
    assert answer.status_code == 403 and "cross-site" in _message(answer)


@pytest.mark.parametrize(("path", "body"), ACTIONS)
async def test_tokens_are_required_and_read_tokens_refused(
    guarded: httpx.AsyncClient, store: ServerStore, path: str, body: dict[str, Any]
) -> None:
    write = {**SAME, "Authorization": f"Bearer {TOKEN}"}
    if path != "/alerts/rules":
        assert (await guarded.post("/alerts/rules", json=RULE, headers=write)).status_code == 200
    answer = await guarded.post(path, json=body, headers=SAME)
    assert answer.status_code == 401 and "Bearer" in _message(answer)
    reader, _ = await create_token(store, "rex", "read")
    read = await guarded.post(
        path, json=body, headers={**SAME, "Authorization": f"Bearer {reader}"}
    )
    assert read.status_code == 403 and "read scope" in _message(read)
    ok = await guarded.post(path, json=body, headers=write)
    assert ok.status_code == 200, ok.text


async def test_bodies_must_be_json_and_well_formed(web: httpx.AsyncClient) -> None:
    text = await web.post("/alerts/rules", content=b"name=x", headers={**SAME,
                          "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert text.status_code == 415
    extra = await _create(web, surprise="1")
    assert extra.status_code == 422
    kind = await _create(web, kind="sometimes")
    assert kind.status_code == 422


async def test_the_http_api_sets_muted_and_keeps_it_when_left_out(web: httpx.AsyncClient) -> None:
    rule = {"name": "acc-low", "kind": "threshold", "metric_key": "accuracy", "op": "<",
            "threshold": 0.8}  # fmt: skip
    muted = await web.post("/api/w/alerts", json={**rule, "muted": True})
    assert muted.status_code == 200, muted.text
    assert muted.json()["muted"] is True
    again = await web.post("/api/w/alerts", json={**rule, "threshold": 0.7})
    assert again.json()["muted"] is True and again.json()["threshold"] == 0.7
    (listed,) = (await web.get("/api/store/v1/alerts")).json()["alerts"]
    assert listed["muted"] is True
