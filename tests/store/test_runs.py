"""The Store contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import math
import time
from array import array
from datetime import UTC, datetime, timedelta

import pytest

from chachaml.client.remote import RemoteStore
from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records.runs import (
    ArtifactRecord,
    Dataset,
    MetricCondition,
    NewRun,
    RunInfo,
    RunQuery,
)
from chachaml.store import Store
from chachaml.store.codec import make_chunk
from tests.support.remote_server import stored_object

pytestmark = [pytest.mark.anyio, pytest.mark.contract]


def new_run(
    run_id: str,
    experiment: str = "exp",
    *,
    started_at: float | None = None,
    parent_id: str | None = None,
    user: str = "alice",
    heartbeat_timeout: float = 60.0,
) -> NewRun:
    return NewRun(
        id=run_id,
        experiment=experiment,
        name=f"name-{run_id}",
        created_by=user,
        started_at=time.time() if started_at is None else started_at,
        parent_id=parent_id,
        heartbeat_timeout=heartbeat_timeout,
    )


def points(
    values: list[float], start: int = 0, t0: float | None = None
) -> list[tuple[int, float, float]]:
    now = time.time() if t0 is None else t0
    return [(start + i, v, now + i) for i, v in enumerate(values)]


async def log(
    store: Store,
    run_id: str,
    key: str,
    values: list[float],
    start: int = 0,
    t0: float | None = None,
) -> None:
    await store.log_metrics([make_chunk(run_id, key, points(values, start, t0))])


async def test_a_new_run_reads_back_as_running_with_its_fields(store: Store) -> None:
    await store.create_run(new_run("r1"))
    run = await store.get_run("r1")
    assert (run.id, run.experiment, run.name, run.status) == ("r1", "exp", "name-r1", "running")
    assert run.created_by == "alice"
    assert run.ended_at is None
    assert (await store.get_experiment("exp")).run_count == 1


async def test_queries_by_experiments_ids_names_and_parent_reference(store: Store) -> None:
    t0 = time.time() - 100
    await store.create_run(new_run("p", "a", started_at=t0))
    await store.create_run(new_run("c1", "a", started_at=t0 + 1, parent_id="p"))
    await store.create_run(new_run("c2", "b", started_at=t0 + 2, parent_id="p"))
    await store.create_run(new_run("other", "c", started_at=t0 + 3))
    # an unnamed run: MLflow's name tag names it; a parent left behind by an import: a tag
    orphan = new_run("o", "b", started_at=t0 + 4).model_copy(update={"name": None})
    await store.create_run(orphan)
    await store.set_tags("o", {"mlflow.runName": "name-c1", "mlflow.parentRunId": "p"})

    async def ids(**fields: object) -> list[str]:
        return [r.id for r in await store.query_runs(RunQuery.model_validate(fields))]

    assert await ids(experiments=["a", "b"]) == ["o", "c2", "c1", "p"]
    assert await ids(experiments=["b", "nope"], run_ids=["c2", "other"]) == ["c2"]
    assert await ids(names=["name-c1", "name-other"]) == ["o", "other", "c1"]
    assert await ids(parent_ref="p") == ["o", "c2", "c1"]
    assert await ids(parent_ref="p", experiments=["a"], order_by_metric=None) == ["c1"]
    assert await store.count_runs(RunQuery(parent_ref="p", names=["name-c2"])) == 1


async def test_unknown_run_is_not_found_and_named(store: Store) -> None:
    with pytest.raises(NotFound, match="nope"):
        await store.get_run("nope")
    with pytest.raises(NotFound, match="nope"):
        await store.log_params("nope", {"a": 1})
    with pytest.raises(NotFound, match="nope"):
        await log(store, "nope", "loss", [1.0])


async def test_duplicate_run_id_is_a_conflict(store: Store) -> None:
    await store.create_run(new_run("r1"))
    with pytest.raises(Conflict):
        await store.create_run(new_run("r1"))


async def test_ending_a_run_twice_is_a_conflict(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await store.end_run("r1", "failed", "ValueError: boom", time.time())
    run = await store.get_run("r1")
    assert (run.status, run.error) == ("failed", "ValueError: boom")
    with pytest.raises(Conflict, match="already ended"):
        await store.end_run("r1", "completed", None, time.time())


async def test_params_keep_their_types_and_cannot_change(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await store.log_params("r1", {"lr": 0.1, "layers": 3, "opt": "adam", "bn": True, "x": None})
    await store.log_params("r1", {"lr": 0.1})  # same value again: fine
    with pytest.raises(Conflict, match="immutable"):
        await store.log_params("r1", {"lr": 0.2, "new": 1})
    run = await store.get_run("r1")
    assert run.params == {"lr": 0.1, "layers": 3, "opt": "adam", "bn": True, "x": None}
    assert "new" not in run.params  # the refused write changed nothing


async def test_tags_are_mutable_and_notes_replace(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await store.set_tags("r1", {"team": "a", "stage": "dev"})
    await store.set_tags("r1", {"stage": "prod"})
    await store.set_note("r1", "# first")
    await store.set_note("r1", "# second")
    run = await store.get_run("r1")
    assert run.tags == {"team": "a", "stage": "prod"}
    assert run.note == "# second"


async def test_metric_summary_tracks_latest_by_step_and_finite_range(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await log(store, "r1", "acc", [0.5, 0.9, 0.7])
    await log(store, "r1", "acc", [0.95], start=1, t0=time.time() + 10)  # a late step 1
    summary = (await store.metric_summaries("r1"))["acc"]
    assert (summary.last, summary.step, summary.count) == (0.7, 2, 4)
    assert (summary.min, summary.max) == (0.5, 0.95)
    history = await store.metric_history("r1", "acc")
    assert history.steps == [0, 1, 1, 2]
    assert history.values == [0.5, 0.9, 0.95, 0.7]


async def test_nan_is_kept_in_history_and_reads_as_none_in_summaries(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await log(store, "r1", "loss", [1.0, math.inf, math.nan])
    summary = (await store.metric_summaries("r1"))["loss"]
    assert summary.last is None
    assert (summary.min, summary.max) == (1.0, 1.0)
    history = await store.metric_history("r1", "loss")
    assert history.values == [1.0, math.inf, None]


async def test_missing_metric_history_lists_the_logged_keys(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await log(store, "r1", "loss", [1.0])
    with pytest.raises(NotFound, match=r"no metric 'acc'.*loss"):
        await store.metric_history("r1", "acc")


async def test_metric_chunks_round_trip_many_points(store: Store) -> None:
    await store.create_run(new_run("r1"))
    values = [i / 7 for i in range(20_000)]
    steps = array("q", range(20_000))
    await store.log_metrics(
        [
            make_chunk("r1", "x", [(s, v, 1.0) for s, v in zip(steps, values, strict=True)]),
        ]
    )
    history = await store.metric_history("r1", "x")
    assert history.values == values
    assert history.steps == list(steps)


def ids(runs: list[RunInfo]) -> list[str]:
    return sorted(r.id for r in runs)


async def test_query_filters_by_experiment_user_status_and_time(store: Store) -> None:
    now = time.time()
    await store.create_run(new_run("old", "a", started_at=now - 86400 * 40))
    await store.create_run(new_run("mine", "a", user="bob"))
    await store.create_run(new_run("other", "b"))
    await store.end_run("other", "completed", None, time.time())  # never before it started
    assert ids(await store.query_runs(RunQuery(experiment="a"))) == ["mine", "old"]
    assert ids(await store.query_runs(RunQuery(created_by="bob"))) == ["mine"]
    assert ids(await store.query_runs(RunQuery(status="completed"))) == ["other"]
    since = datetime.now(UTC) - timedelta(days=30)
    assert ids(await store.query_runs(RunQuery(since=since))) == ["mine", "other"]
    assert ids(await store.query_runs(RunQuery(until=since))) == ["old"]
    assert await store.count_runs(RunQuery(experiment="a")) == 2
    newest_first = await store.query_runs(RunQuery(limit=2))
    assert newest_first[-1].id != "old"


async def test_stale_heartbeat_reads_as_killed_everywhere(store: Store) -> None:
    past = time.time() - 100
    await store.create_run(new_run("dead", started_at=past, heartbeat_timeout=5))
    await store.create_run(new_run("alive", heartbeat_timeout=60))
    assert (await store.get_run("dead")).status == "killed"
    assert [r.id for r in await store.query_runs(RunQuery(status="killed"))] == ["dead"]
    assert [r.id for r in await store.query_runs(RunQuery(status="running"))] == ["alive"]
    await store.heartbeat(["dead"], time.time())
    assert (await store.get_run("dead")).status == "running"


async def test_metric_conditions_and_ordering(store: Store) -> None:
    for i, acc in enumerate([0.5, 0.92, 0.97, 0.8]):
        await store.create_run(new_run(f"r{i}"))
        await log(store, f"r{i}", "acc", [0.1, acc])
        await log(store, f"r{i}", "loss", [1 - acc])
    await store.create_run(new_run("never"))
    best_first = await store.query_runs(
        RunQuery(
            metric_conditions=[MetricCondition(key="acc", op=">", value=0.9)],
            order_by_metric="acc",
        )
    )
    assert [r.id for r in best_first] == ["r2", "r1"]
    both = await store.query_runs(
        RunQuery(
            metric_conditions=[
                MetricCondition(key="acc", op=">=", value=0.8),
                MetricCondition(key="loss", op="<", value=0.1),
            ]
        )
    )
    assert sorted(r.id for r in both) == ["r1", "r2"]
    lowest = await store.query_runs(RunQuery(order_by_metric="acc", direction="min", limit=1))
    assert lowest[0].id == "r0"
    assert lowest[0].metrics["acc"] == 0.5


async def test_runs_order_by_each_field_the_same_on_every_backend(store: Store) -> None:
    t0 = time.time() - 1000
    specs = [  # id, experiment, name, user, started, seconds it ran (None: still running)
        ("r1", "beta", "zeta", "carol", t0, 50.0),
        ("r2", "alpha", None, "alice", t0 + 10, None),
        ("r3", "beta", "alpha", "bob", t0 + 20, 5.0),
        ("r4", "alpha", "mu", "alice", t0 + 30, 500.0),
    ]
    for run_id, experiment, name, user, started, ran in specs:
        new = new_run(run_id, experiment, started_at=started, user=user)
        await store.create_run(new.model_copy(update={"name": name}))
        if ran is not None:
            await store.end_run(run_id, "completed" if run_id != "r3" else "failed", None,
                                started + ran)  # fmt: skip

    async def order(by: str, direction: str) -> list[str]:
        query = RunQuery(order_by=by, direction=direction)  # type: ignore[arg-type]
        return [r.id for r in await store.query_runs(query)]

    assert await order("started", "max") == ["r4", "r3", "r2", "r1"]
    assert await order("started", "min") == ["r1", "r2", "r3", "r4"]
    assert await order("name", "min") == ["r3", "r4", "r1", "r2"]  # unnamed last
    assert await order("name", "max") == ["r1", "r4", "r3", "r2"]
    assert await order("experiment", "min") == ["r4", "r2", "r3", "r1"]  # ties newest first
    assert await order("status", "min") == ["r4", "r1", "r3", "r2"]  # completed, failed, running
    assert await order("user", "max") == ["r1", "r3", "r4", "r2"]
    assert await order("duration", "max") == ["r4", "r1", "r3", "r2"]  # still running last
    assert await order("duration", "min") == ["r3", "r1", "r4", "r2"]
    with pytest.raises(ValueError):
        RunQuery(order_by="colour")  # type: ignore[arg-type]


async def test_best_run_carries_the_winning_value_and_step(store: Store) -> None:
    for i, accs in enumerate([[0.5, 0.7], [0.9, 0.6], [0.2, 0.3, 0.8]]):
        await store.create_run(new_run(f"r{i}", "cls" if i else "other"))
        await log(store, f"r{i}", "acc", accs)
    best = await store.best_run(RunQuery(order_by_metric="acc"))
    assert best is not None
    assert (best.run.id, best.value, best.step, best.direction) == ("r2", 0.8, 2, "max")
    worst = await store.best_run(RunQuery(order_by_metric="acc", direction="min", experiment="cls"))
    assert worst is not None and (worst.run.id, worst.value, worst.step) == ("r1", 0.6, 1)
    assert await store.best_run(RunQuery(order_by_metric="f1")) is None
    with pytest.raises(InvalidInput, match="ordered by a metric"):
        await store.best_run(RunQuery())


async def test_param_and_tag_filters(store: Store) -> None:
    await store.create_run(new_run("r1"))
    await store.create_run(new_run("r2"))
    await store.log_params("r1", {"opt": "adam", "lr": 1})
    await store.log_params("r2", {"opt": "sgd", "lr": 1.0})
    await store.set_tags("r2", {"team": "x"})
    found = await store.query_runs(RunQuery(params={"opt": "adam"}))
    assert [r.id for r in found] == ["r1"]
    assert [r.id for r in await store.query_runs(RunQuery(params={"lr": 1.0}))] == ["r2"]
    assert [r.id for r in await store.query_runs(RunQuery(tags={"team": "x"}))] == ["r2"]
    params = await store.run_params(["r1", "r2"])
    assert params["r1"] == {"lr": 1, "opt": "adam"}


async def test_children_parents_and_datasets(store: Store) -> None:
    await store.create_run(new_run("parent"))
    await store.create_run(new_run("child", parent_id="parent"))
    with pytest.raises(NotFound):
        await store.create_run(new_run("orphan", parent_id="missing"))
    await store.log_dataset(
        "child", Dataset(role="train", n_rows=10, n_cols=2, features=["a", "b"])
    )
    child = await store.get_run("child")
    assert child.parent_id == "parent"
    assert child.datasets[0].features == ["a", "b"]
    assert (await store.get_run("parent")).children == ["child"]


async def test_artifact_records_replace_and_missing_lists_names(store: Store) -> None:
    await store.create_run(new_run("r1"))
    obj, again = await stored_object(store, b"abc"), await stored_object(store, b"abcd")
    record = ArtifactRecord(
        run_id="r1",
        name="model.bin",
        content_type="application/octet-stream",
        serializer="bytes",
        size=obj.size,
        sha256=obj.sha256,
        uri=obj.uri,
        created_at=time.time(),
    )
    await store.add_artifact(record)
    await store.add_artifact(record.model_copy(update={"size": 4, "sha256": again.sha256,
                                                       "uri": again.uri}))  # fmt: skip
    arts = await store.list_artifacts("r1")
    assert [(a.name, a.size) for a in arts] == [("model.bin", 4)]
    with pytest.raises(NotFound, match=r"no artifact 'other'.*model\.bin"):
        await store.get_artifact("r1", "other")


async def test_experiments_upsert_and_list_by_activity(store: Store) -> None:
    created = await store.create_experiment("e1", "first", "alice")
    assert (created.description, created.owner, created.run_count) == ("first", "alice", 0)
    again = await store.create_experiment("e1", description="updated")
    assert (again.description, again.owner, again.id) == ("updated", "alice", created.id)
    await store.create_run(new_run("r1", "e2"))
    names = [e.name for e in await store.list_experiments()]
    assert names[0] == "e2" and set(names) == {"e1", "e2"}
    with pytest.raises(NotFound):
        await store.get_experiment("none")


async def test_archive_and_delete_archived_return_unreferenced_uris(store: Store) -> None:
    old = time.time() - 86400 * 10
    shared, alone = await stored_object(store, b"b"), await stored_object(store, b"c")
    for run_id, obj in (("old", shared), ("old2", alone), ("new", shared)):
        await store.create_run(new_run(run_id, started_at=old if run_id != "new" else None))
        await store.end_run(run_id, "completed", None, time.time())
        await store.add_artifact(
            ArtifactRecord(
                run_id=run_id,
                name="a",
                content_type="x",
                serializer="bytes",
                size=obj.size,
                sha256=obj.sha256,
                uri=obj.uri,
                created_at=time.time(),
            )
        )
    await store.create_run(new_run("running-old", started_at=old))
    archived = await store.archive_runs(time.time() - 86400, None)
    assert archived == 2  # running runs are never archived
    assert {r.id for r in await store.query_runs(RunQuery())} == {"new", "running-old"}
    deleted, uris = await store.delete_archived()
    assert deleted == 2
    if isinstance(store, RemoteStore):  # its server deleted the unused files itself
        assert uris == [] and not await store.artifacts.contains(alone)
        assert await store.artifacts.contains(shared)  # still used by "new"
    else:
        assert uris == [alone.uri]  # the shared object is still used by "new"
    with pytest.raises(NotFound):
        await store.get_run("old")


@pytest.mark.server_store
async def test_one_run_is_archived_and_restored_whatever_its_status(store: Store) -> None:
    from chachaml.store import ServerStore

    assert isinstance(store, ServerStore)
    await store.create_run(new_run("r1"))  # still running
    await store.set_run_archived("r1", True)
    assert (await store.get_run("r1")).archived
    assert [r.id for r in await store.query_runs(RunQuery())] == []
    assert [r.id for r in await store.query_runs(RunQuery(only_archived=True))] == ["r1"]
    await store.set_run_archived("r1", True)  # again: no change, no error
    await store.set_run_archived("r1", False)
    assert [r.id for r in await store.query_runs(RunQuery())] == ["r1"]
    with pytest.raises(NotFound, match="nope"):
        await store.set_run_archived("nope", True)


@pytest.mark.server_store
async def test_a_run_is_renamed_and_a_tag_removed(store: Store) -> None:
    from chachaml.store import ServerStore

    assert isinstance(store, ServerStore)
    await store.create_run(new_run("r1"))
    await store.set_tags("r1", {"a": "1", "b": "2"})
    await store.delete_tag("r1", "a")
    with pytest.raises(NotFound, match="no tag 'a'"):
        await store.delete_tag("r1", "a")
    await store.rename_run("r1", "renamed")
    run = await store.get_run("r1")
    assert (run.name, run.tags) == ("renamed", {"b": "2"})
    await store.rename_run("r1", None)
    assert (await store.get_run("r1")).name is None


async def test_a_stop_request_comes_back_with_the_heartbeat_and_the_run_ends_stopped(
    store: Store,
) -> None:
    await store.create_run(new_run("r1"))
    await store.create_run(new_run("other"))
    assert await store.heartbeat(["r1", "other"], time.time()) == []
    asked = await store.request_stop("r1", "bob", "val_loss stalled", time.time())
    assert (asked.run_id, asked.user, asked.reason) == ("r1", "bob", "val_loss stalled")
    (heard,) = await store.heartbeat(["r1", "other"], time.time())
    assert heard == asked
    # asking again keeps who asked first, and why
    again = await store.request_stop("r1", "carol", "another reason", time.time())
    assert again == asked
    assert (await store.get_run("r1")).stop_request == asked
    await store.end_run("r1", "completed", None, time.time())
    ended = await store.get_run("r1")
    assert ended.status == "stopped" and ended.stop_request == asked
    assert [r.id for r in await store.query_runs(RunQuery(status="stopped"))] == ["r1"]
    assert await store.heartbeat(["r1"], time.time()) == []  # ended: nothing pending
    await store.end_run("other", "completed", None, time.time())
    assert (await store.get_run("other")).status == "completed"


async def test_a_stop_request_reaches_the_running_children_and_fails_stay_failed(
    store: Store,
) -> None:
    await store.create_run(new_run("parent"))
    await store.create_run(new_run("step", parent_id="parent"))
    await store.create_run(new_run("done", parent_id="parent"))
    await store.end_run("done", "completed", None, time.time())
    await store.request_stop("parent", "bob", None, time.time())
    heard = await store.heartbeat(["parent", "step", "done"], time.time())
    assert sorted(s.run_id for s in heard) == ["parent", "step"]
    await store.end_run("step", "failed", "ValueError: x", time.time())
    assert (await store.get_run("step")).status == "failed"
    assert (await store.get_run("done")).stop_request is None


async def test_only_a_live_running_run_can_be_asked_to_stop(store: Store) -> None:
    with pytest.raises(NotFound, match="run 'nope' not found"):
        await store.request_stop("nope", "bob", None, time.time())
    await store.create_run(new_run("ended"))
    await store.end_run("ended", "failed", None, time.time())
    with pytest.raises(Conflict, match=r"already ended \(failed\)"):
        await store.request_stop("ended", "bob", None, time.time())
    await store.create_run(new_run("dead", started_at=time.time() - 100, heartbeat_timeout=5))
    with pytest.raises(Conflict, match="reads killed"):
        await store.request_stop("dead", "bob", None, time.time())
