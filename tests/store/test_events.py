"""The outbox part of the ServerStore contract, on SQLite and PostgreSQL.

Each write emits its event in its own transaction, a rolled-back write emits nothing, ids
follow commit order (a reader resuming after the last id it saw misses nothing), old events
are pruned, and a stale heartbeat is reported once.
"""

from __future__ import annotations

import time

import anyio
import pytest

from chachaml.errors import Conflict
from chachaml.records.alerts import NewAlert, NewAlertEvent
from chachaml.records.events import Event
from chachaml.records.pipelines import NewPipeline, NewPipelineStep
from chachaml.records.registry import NewModelVersion
from chachaml.records.runs import ArtifactRecord, NewRun
from chachaml.store import ServerStore, open_store
from chachaml.store.codec import make_chunk
from tests.support.remote_server import stored_object

pytestmark = [pytest.mark.anyio, pytest.mark.contract, pytest.mark.server_store]


def new_run(run_id: str, experiment: str = "exp", **changes: object) -> NewRun:
    fields: dict[str, object] = {
        "id": run_id,
        "experiment": experiment,
        "name": run_id,
        "created_by": "alice",
        "started_at": time.time(),
        "heartbeat_timeout": 60.0,
    }
    return NewRun.model_validate({**fields, **changes})


async def events_after(store: ServerStore, after: int = 0) -> list[Event]:
    return await store.read_events(after, 10_000)


async def types_after(store: ServerStore, after: int) -> list[str]:
    return [e.type for e in await events_after(store, after)]


async def test_a_run_emits_started_tagged_noted_metrics_and_ended(store: ServerStore) -> None:
    await store.create_run(new_run("r1", tags={"team": "ml"}))
    await store.set_tags("r1", {"lr": "0.1"}, user="bob")
    await store.set_note("r1", "first try", user="bob")
    chunks = [
        make_chunk("r1", "loss", [(0, 1.0, 1.0), (1, 0.5, 2.0)]),
        make_chunk("r1", "loss", [(2, 0.25, 3.0)]),
        make_chunk("r1", "acc", [(2, 0.9, 3.0)]),
    ]
    await store.log_metrics(chunks)
    await store.end_run("r1", "completed", None, time.time())
    events = await events_after(store)
    assert [e.type for e in events] == [
        "experiment.created", "run.started", "run.tagged", "run.noted", "run.metrics",
        "run.ended",
    ]  # fmt: skip
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    created, started, tagged, noted, metrics, ended = events
    assert (created.subject, created.experiment, created.data) == (
        "experiments/exp", "exp", {"name": "exp"}
    )  # fmt: skip
    assert started.data["tags"] == {"team": "ml"} and started.subject == "runs/r1"
    assert (started.runid, started.experiment, started.specversion) == ("r1", "exp", "1.0")
    assert tagged.data == {"run_id": "r1", "tags": {"lr": "0.1"}, "removed": [], "user": "bob"}
    assert noted.data["note"] == "first try"
    # one event for the whole batch: the latest point of each metric and the points stored
    assert metrics.data["metrics"] == {
        "loss": {"value": 0.25, "step": 2}, "acc": {"value": 0.9, "step": 2}
    }  # fmt: skip
    assert metrics.data["counts"] == {"loss": 3, "acc": 1}
    assert ended.data["status"] == "completed" and ended.data["duration"] >= 0
    assert ended.data["metrics"] == {"acc": 0.9, "loss": 0.25}


async def test_experiment_renames_archives_restores_and_tags_emit_events(
    store: ServerStore,
) -> None:
    exp = await store.create_experiment("old")
    after = (await events_after(store))[-1].seq
    await store.set_experiment_tag(exp.id, "team", "cv", user="bob")
    await store.delete_experiment_tag(exp.id, "team", user="bob")
    await store.rename_experiment(exp.id, "new", user="ann")
    await store.rename_experiment(exp.id, "new", user="ann")  # no change: no event
    await store.set_experiment_archived(exp.id, True, user="ann")
    await store.set_experiment_archived(exp.id, True, user="ann")  # already: no event
    await store.set_experiment_archived(exp.id, False)
    with pytest.raises(Conflict):  # a failed rename rolls back and emits nothing
        await store.rename_experiment(exp.id, (await store.create_experiment("taken")).name)
    events = [e for e in await events_after(store, after) if e.type != "experiment.created"]
    assert [(e.type, e.subject, e.experiment, e.data.get("user")) for e in events] == [
        ("experiment.tagged", "experiments/old", "old", "bob"),
        ("experiment.tagged", "experiments/old", "old", "bob"),
        ("experiment.renamed", "experiments/new", "new", "ann"),
        ("experiment.archived", "experiments/new", "new", "ann"),
        ("experiment.restored", "experiments/new", "new", None),
    ]
    tagged, untagged, renamed = (e.data for e in events[:3])
    assert (tagged["tags"], tagged["removed"]) == ({"team": "cv"}, [])
    assert (untagged["tags"], untagged["removed"]) == ({}, ["team"])
    assert (renamed["name"], renamed["previous"]) == ("new", "old")


async def test_a_rolled_back_write_emits_nothing(store: ServerStore) -> None:
    await store.create_run(new_run("r1"))
    before = await store.last_event_id()
    # the second create first makes its experiment (and that experiment's event), then finds
    # the run id taken: the whole transaction is rolled back, event included
    with pytest.raises(Conflict):
        await store.create_run(new_run("r1", experiment="brand-new"))
    assert await events_after(store, before) == []
    assert "brand-new" not in [e.name for e in await store.list_experiments()]
    with pytest.raises(Conflict):  # ends twice: the second end changes nothing, says nothing
        await store.end_run("r1", "completed", None, time.time())
        await store.end_run("r1", "failed", None, time.time())
    assert await types_after(store, before) == ["run.ended"]


async def test_registry_events_name_the_model_and_each_stage_change(store: ServerStore) -> None:
    await store.create_run(new_run("r1"))
    obj = await stored_object(store, b"weights")
    await store.add_artifact(ArtifactRecord(
        run_id="r1", name="model", content_type="application/octet-stream", serializer="bytes",
        size=obj.size, sha256=obj.sha256, uri=obj.uri, created_at=time.time(),
    ))  # fmt: skip
    before = await store.last_event_id()
    new = NewModelVersion(model="m", run_id="r1", artifact="model", created_by="alice",
                          stage="production")  # fmt: skip
    await store.register_model_version(new)
    await store.register_model_version(new)  # version 2 archives version 1
    await store.set_model_alias("m", "champion", 2, "alice")
    await store.delete_model_alias("m", "champion", "bob")
    events = await events_after(store, before)
    assert [(e.type, e.subject) for e in events] == [
        ("model.registered", "models/m/versions/1"),
        ("model.registered", "models/m/versions/2"),
        ("model.stage_changed", "models/m/versions/1"),
        ("model.alias_set", "models/m"),
        ("model.alias_removed", "models/m"),
    ]
    assert all(e.model == "m" for e in events)
    assert events[0].runid == "r1" and events[0].experiment == "exp"
    assert events[2].data["from_stage"] == "production" and events[2].data["to_stage"] == "archived"
    assert events[4].data == {"name": "m", "alias": "champion", "version": 2, "user": "bob"}


async def test_pipelines_and_alerts_emit_their_events(store: ServerStore) -> None:
    await store.create_run(new_run("p-run"))
    await store.create_run(new_run("s-run"))
    before = await store.last_event_id()
    steps = [NewPipelineStep(name="prep"), NewPipelineStep(name="train", depends_on=["prep"])]
    await store.create_pipeline(NewPipeline(id="p1", name="flow", run_id="p-run",
                                            created_by="alice", started_at=time.time(),
                                            max_parallel=1, steps=steps))  # fmt: skip
    await store.start_pipeline_step("p1", "prep", "s-run", 1, time.time())
    await store.end_pipeline_step("p1", "prep", "failed", time.time(), error="boom")
    await store.end_pipeline_step("p1", "train", "skipped", time.time())
    await store.end_pipeline("p1", "failed", "prep failed", time.time())
    await store.set_alert(NewAlert(name="low", kind="threshold", metric_key="acc", op="<",
                                   threshold=0.5, created_by="alice"))  # fmt: skip
    fired = NewAlertEvent(subject="s-run", run_id="s-run", experiment="exp", message="acc low",
                          fired_at=time.time(), webhook=False)  # fmt: skip
    await store.fire_alert("low", fired)
    await store.fire_alert("low", fired)  # once per subject: no second firing, no event
    events = await events_after(store, before)
    assert [(e.type, e.data.get("step"), e.data.get("status")) for e in events] == [
        ("pipeline.started", None, None),
        ("pipeline.step_changed", "prep", "running"),
        ("pipeline.step_changed", "prep", "failed"),
        ("pipeline.step_changed", "train", "skipped"),
        ("pipeline.ended", None, "failed"),
        ("alert.fired", None, None),
    ]
    assert events[1].runid == "s-run" and events[2].data["error"] == "boom"
    assert events[5].subject == "alerts/low" and events[5].runid == "s-run"


async def test_ids_follow_commit_order_under_concurrent_writers(store_url: str) -> None:
    """A reader that resumes after the last id it saw, while others write, misses nothing.

    (Without PostgreSQL's ordering lock, this reader missed about one event in ten.)
    """
    stores = [await open_store(store_url) for _ in range(5)]
    try:
        writer_stores, reader = stores[:4], stores[4]
        for i, s in enumerate(writer_stores):
            await s.create_run(new_run(f"r{i}"))
        start = await reader.last_event_id()
        seen: list[int] = []
        done = anyio.Event()

        async def write(s: ServerStore, run_id: str) -> None:
            for n in range(60):
                await s.set_tags(run_id, {"n": str(n)})

        async def read() -> None:
            cursor = start
            while True:
                finished = done.is_set()
                for event in await reader.read_events(cursor, 1000):
                    seen.append(event.seq)
                    cursor = event.seq
                if finished:
                    return
                await anyio.sleep(0)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            async with anyio.create_task_group() as writers:
                for i, s in enumerate(writer_stores):
                    writers.start_soon(write, s, f"r{i}")
            done.set()
        every = [e.seq for e in await reader.read_events(start, 10_000)]
        assert len(every) == 240
        assert seen == every  # in order, and nothing skipped while reading concurrently
    finally:
        for s in stores:
            await s.close()


async def test_old_events_are_pruned_and_ids_are_never_reused(store: ServerStore) -> None:
    await store.create_run(new_run("r1"))
    kept_from = await store.last_event_id()
    assert await store.prune_events(time.time() + 1) == kept_from  # every event so far
    assert await events_after(store) == [] and await store.last_event_id() == 0
    await store.set_tags("r1", {"a": "b"})
    (after,) = await events_after(store)
    assert after.seq > kept_from  # a consumer's Last-Event-ID still means what it meant
    assert await store.prune_events(time.time() - 3600) == 0  # recent events are kept


async def test_a_stale_heartbeat_is_reported_once_by_any_number_of_sweeps(
    store_url: str,
) -> None:
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        first = stores[0]
        long_ago = time.time() - 100
        await first.create_run(new_run("dead", started_at=long_ago, heartbeat_timeout=10.0))
        await first.create_run(new_run("alive"))
        before = await first.last_event_id()
        now = time.time()
        marked: list[list[str]] = []

        async def sweep(s: ServerStore) -> None:
            marked.append(await s.sweep_killed(now))

        async with anyio.create_task_group() as tasks:
            for s in stores:
                tasks.start_soon(sweep, s)
        assert sorted(marked) == [[], [], ["dead"]]
        assert await first.sweep_killed(time.time()) == []
        (killed,) = await first.read_events(before, 100)
        assert (killed.type, killed.runid, killed.experiment) == ("run.killed", "dead", "exp")
        assert killed.data["heartbeat_timeout"] == 10.0
        assert (await first.get_run("dead")).status == "killed"  # reads say so, as before
    finally:
        for s in stores:
            await s.close()


async def test_a_store_without_events_keeps_its_outbox_empty(store: ServerStore) -> None:
    """The benchmarks' baseline: the same writes, no event rows."""
    store.database.keep_events = False  # type: ignore[attr-defined]
    await store.create_run(new_run("r1"))
    await store.log_metrics([make_chunk("r1", "loss", [(0, 1.0, 1.0)])])
    assert await store.last_event_id() == 0


async def test_a_stop_request_is_written_with_its_events_for_the_run_and_its_children(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("parent"))
    await store.create_run(new_run("step", parent_id="parent"))
    before = await store.last_event_id()
    await store.request_stop("parent", "bob", "hopeless", time.time())
    events = await events_after(store, before)
    assert [(e.type, e.runid, e.data.get("parent_id")) for e in events] == [
        ("run.stop_requested", "parent", None),
        ("run.stop_requested", "step", "parent"),
    ]
    assert events[0].data == {"run_id": "parent", "reason": "hopeless", "user": "bob",
                              "parent_id": None}  # fmt: skip
    assert events[0].experiment == "exp"
    after = await store.last_event_id()
    await store.request_stop("parent", "carol", None, time.time())  # the first request stays
    assert await events_after(store, after) == []
    await store.end_run("parent", "completed", None, time.time())
    (ended,) = await events_after(store, after)
    assert ended.type == "run.ended" and ended.data["status"] == "stopped"
