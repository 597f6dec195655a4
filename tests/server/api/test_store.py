"""The store read API's metric routes in process: step ranges on the wire, bad bounds a 422."""

from __future__ import annotations

import base64
import time
from array import array
from collections.abc import AsyncIterator

import httpx
import pytest

from chachaml.records.runs import NewRun
from chachaml.server.app import create_app
from chachaml.store import ServerStore
from chachaml.store.codec import make_chunk

pytestmark = pytest.mark.anyio
RUN = "c" * 32
BASE = f"/api/store/v1/runs/{RUN}"


@pytest.fixture
async def api(store: ServerStore) -> AsyncIterator[httpx.AsyncClient]:
    await store.create_run(NewRun(id=RUN, experiment="e", name="r", created_by="ana",
                                  started_at=time.time(), heartbeat_timeout=60.0))  # fmt: skip
    for start in (0, 50):
        points = [(s, s / 2, 100.0 + s) for s in range(start, start + 50)]
        await store.log_metrics([make_chunk(RUN, "loss", points)])
    transport = httpx.ASGITransport(create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


async def test_history_and_packed_series_answer_a_step_range(api: httpx.AsyncClient) -> None:
    history = await api.get(f"{BASE}/metrics/loss", params={"min_step": 48, "max_step": 52})
    assert history.json()["steps"] == [48, 49, 50, 51, 52]
    packed = (await api.get(f"{BASE}/series/loss", params={"min_step": 97})).json()
    steps = array("q", base64.b64decode(packed["steps"]))
    assert list(steps) == [97, 98, 99]
    assert list(array("d", base64.b64decode(packed["values"]))) == [48.5, 49.0, 49.5]
    assert (packed["total"], packed["first_step"], packed["last_step"]) == (100, 0, 99)


@pytest.mark.parametrize(
    "query", ["min_step=abc", "max_step=1.5", "min_step=9223372036854775808", "max_step=-1e3"]
)
async def test_a_bad_step_bound_is_a_422_envelope(api: httpx.AsyncClient, query: str) -> None:
    for route in ("metrics", "series", "outline"):
        answer = await api.get(f"{BASE}/{route}/loss?{query}&points=10")
        assert answer.status_code == 422
        assert answer.json()["error"]["message"].startswith("query parameter")


async def test_the_outline_route_answers_a_range_and_wants_a_chart_size(
    api: httpx.AsyncClient,
) -> None:
    found = (await api.get(f"{BASE}/outline/loss", params={"min_step": 97, "points": 10})).json()
    assert list(array("q", base64.b64decode(found["steps"]))) == [97, 98, 99]
    assert (found["in_range"], found["positions"], found["total"]) == (3, None, 100)
    for query in ("", "points=0", "points=x", "points=1000001"):
        answer = await api.get(f"{BASE}/outline/loss?{query}")
        assert answer.status_code == 422
        assert "points" in answer.json()["error"]["message"]
