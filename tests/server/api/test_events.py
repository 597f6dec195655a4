"""``GET /api/events`` (Server-Sent Events) and ``/api/events/schemas``, in process.

The app runs with its lifespan (the shared outbox reader) over a SQLite store; writes go
straight to the store, as a training process's would, and arrive on the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from chachaml.records.events import EVENT_TYPES
from chachaml.records.runs import NewRun
from chachaml.server.access import AccessConfig
from chachaml.server.api.routes import ApiConfig
from chachaml.server.app import create_app
from chachaml.store import ServerStore, open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.codec import make_chunk
from tests.support.sse import open_stream

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1:8080"


def new_run(run_id: str, experiment: str = "exp") -> NewRun:
    return NewRun(id=run_id, experiment=experiment, name=None, created_by="alice",
                  started_at=time.time(), heartbeat_timeout=60.0)  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def serving(
    store: ServerStore, tmp_path: Path, heartbeat: float = 15.0, access: AccessConfig | None = None
) -> AsyncIterator[Starlette]:
    app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "artifacts")),
                     api=ApiConfig(events_heartbeat=heartbeat), access=access)  # fmt: skip
    async with app.router.lifespan_context(app):
        yield app


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE)


async def test_each_change_arrives_as_a_cloudevent_with_its_id(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path) as app, open_stream(app, "/api/events") as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        await store.create_run(new_run("r1"))
        await store.log_metrics([make_chunk("r1", "loss", [(0, 0.5, 1.0), (1, 0.4, 2.0)])])
        created, started, metrics = [await stream.event() for _ in range(3)]
    assert [created["type"], started["type"], metrics["type"]] == [
        "experiment.created", "run.started", "run.metrics"
    ]  # fmt: skip
    assert metrics["data"]["metrics"]["loss"] == {"value": 0.4, "step": 1}
    assert (metrics["specversion"], metrics["source"], metrics["runid"]) == (
        "1.0",
        "chachaml",
        "r1",
    )
    assert int(created["id"]) < int(started["id"]) < int(metrics["id"])


async def test_filters_pick_types_runs_and_experiments(store: ServerStore, tmp_path: Path) -> None:
    await store.create_run(new_run("r1", "a"))
    await store.create_run(new_run("r2", "b"))
    url = "/api/events?type=run.metrics,run.ended&run_id=r2"
    by_experiment = "/api/events?experiment=a&type=run.*"
    async with (
        serving(store, tmp_path) as app,
        open_stream(app, url) as stream,
        open_stream(app, by_experiment) as theirs_stream,
    ):
        for run_id in ("r1", "r2"):
            await store.log_metrics([make_chunk(run_id, "loss", [(0, 1.0, 1.0)])])
            await store.set_tags(run_id, {"k": "v"})
            await store.end_run(run_id, "completed", None, time.time())
        only = [await stream.event() for _ in range(2)]
        theirs = [await theirs_stream.event() for _ in range(3)]
    assert [(e["type"], e["runid"]) for e in only] == [("run.metrics", "r2"), ("run.ended", "r2")]
    assert [(e["type"], e["runid"]) for e in theirs] == [
        ("run.metrics", "r1"), ("run.tagged", "r1"), ("run.ended", "r1")
    ]  # fmt: skip


async def test_last_event_id_resumes_after_the_last_event_seen(
    store: ServerStore, tmp_path: Path
) -> None:
    await store.create_run(new_run("r1"))
    seen = await store.last_event_id()
    for n in range(3):  # written while the client was away
        await store.set_tags("r1", {"n": str(n)})
    async with serving(store, tmp_path) as app:
        async with open_stream(app, "/api/events", {"Last-Event-ID": str(seen)}) as stream:
            missed = [await stream.event() for _ in range(3)]
            await store.set_note("r1", "live again")
            live = await stream.event()
        # the same through ?after= (for clients that cannot set the header)
        async with open_stream(app, f"/api/events?after={seen}&type=run.tagged") as stream:
            again = await stream.event()
    assert [e["data"]["tags"] for e in missed] == [{"n": "0"}, {"n": "1"}, {"n": "2"}]
    assert [int(e["id"]) for e in missed] == [seen + 1, seen + 2, seen + 3]
    assert live["type"] == "run.noted"
    assert again["id"] == missed[0]["id"]


async def test_a_quiet_stream_sends_heartbeat_comments(store: ServerStore, tmp_path: Path) -> None:
    async with (
        serving(store, tmp_path, heartbeat=0.05) as app,
        open_stream(app, "/api/events") as stream,
    ):
        opening = await stream.frame()
        beat = await stream.frame()
    assert opening.fields["retry"] == "2000"
    assert beat.comment == "heartbeat" and not beat.fields


async def test_many_clients_share_one_reader_and_each_gets_every_event(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path) as app:
        async with (
            open_stream(app, "/api/events") as a,
            open_stream(app, "/api/events") as b,
            open_stream(app, "/api/events") as c,
        ):
            assert app.state.events.subscribers == 3
            await store.create_run(new_run("r1"))
            got = [[(await s.event())["type"] for _ in range(2)] for s in (a, b, c)]
        left = app.state.events.subscribers  # closed streams leave no subscription behind
    assert got == [["experiment.created", "run.started"]] * 3
    assert left == 0


@pytest.mark.parametrize(
    ("url", "headers", "message"),
    [
        ("/api/events?limit=1", {}, "unknown query parameter 'limit'"),
        ("/api/events?type=nothing.*", {}, "matches no event type"),
        ("/api/events?type=RUN", {}, "may hold only"),
        ("/api/events?after=x", {}, "after must be an event id"),
        ("/api/events", {"Last-Event-ID": "-3"}, "Last-Event-ID must be an event id"),
    ],
)
async def test_bad_requests_are_422_before_any_stream(
    store: ServerStore, tmp_path: Path, url: str, headers: dict[str, str], message: str
) -> None:
    async with serving(store, tmp_path) as app, client(app) as web:
        answer = await web.get(url, headers=headers)
    assert answer.status_code == 422
    assert message in answer.json()["error"]["message"]


async def test_team_mode_needs_a_read_token(store: ServerStore, tmp_path: Path) -> None:
    access = AccessConfig(tokens=(("ada", "ada-read-token", "read"),))
    async with serving(store, tmp_path, access=access) as app:
        async with open_stream(app, "/api/events") as anonymous:
            assert anonymous.status == 401
        auth = {"Authorization": "Bearer ada-read-token"}
        async with open_stream(app, "/api/events", auth) as reader:
            await store.create_run(new_run("r1"))
            assert (await reader.event())["type"] == "experiment.created"


async def test_the_schema_of_each_type_is_published(store: ServerStore, tmp_path: Path) -> None:
    async with serving(store, tmp_path) as app, client(app) as web:
        schemas = (await web.get("/api/events/schemas")).json()
    assert set(schemas) == set(EVENT_TYPES)
    metrics = schemas["run.metrics"]
    assert metrics["properties"]["type"]["const"] == "run.metrics"
    assert set(metrics["properties"]["data"]["required"]) == {"run_id", "metrics", "counts"}
    assert {"specversion", "id", "source", "type", "time", "data"} <= set(metrics["required"])


async def test_the_outbox_pages_as_json_for_remote_readers(
    store: ServerStore, tmp_path: Path
) -> None:
    await store.create_run(new_run("r1"))
    await store.log_metrics([make_chunk("r1", "loss", [(0, 0.5, 1.0)])])
    async with serving(store, tmp_path) as app, client(app) as web:
        whole = (await web.get("/api/store/v1/events")).json()
        assert [e["type"] for e in whole["events"]] == [
            "experiment.created", "run.started", "run.metrics"
        ]  # fmt: skip
        first = int(whole["events"][0]["id"])
        assert whole["last_event_id"] == int(whole["events"][-1]["id"])
        page = (await web.get(f"/api/store/v1/events?after={first}&limit=1")).json()
        assert [e["type"] for e in page["events"]] == ["run.started"]
        head = (await web.get("/api/store/v1/events?limit=0")).json()
        assert head == {"events": [], "last_event_id": whole["last_event_id"]}
        for query, message in [
            ("limit=1001", "limit must be an integer from 0 to 1000"),
            ("limit=-1", "limit must be"),
            ("after=x", "after must be an event id"),
            ("type=run.*", "unknown query parameter 'type'"),
        ]:
            answer = await web.get(f"/api/store/v1/events?{query}")
            assert answer.status_code == 422
            assert message in answer.json()["error"]["message"]
