"""The write operations every surface calls (tools: runs, metrics, artifacts), per backend."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from chachaml.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from chachaml.records.runs import Dataset
from chachaml.store import Store
from chachaml.store.artifacts import StoredObject, open_artifact_store
from chachaml.store.codec import make_chunk
from chachaml.tools import alerts as alert_ops
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import metrics as metric_ops
from chachaml.tools import retention
from chachaml.tools import runs as run_ops

pytestmark = pytest.mark.anyio


async def started(store: Store, **changes: object) -> str:
    fields: dict[str, object] = {"created_by": "tester", "tags": {"team": "vision"}}
    new = run_ops.new_run("mnist", "baseline", **{**fields, **changes})  # type: ignore[arg-type]
    await run_ops.start_run(store, new, {"lr": 0.01})
    return new.id


async def test_a_started_run_is_running_with_its_tags_and_params(store: Store) -> None:
    run_id = await started(store)
    run = await run_ops.get_run(store, run_id)
    assert (run.status, run.experiment, run.name, run.created_by) == (
        "running",
        "mnist",
        "baseline",
        "tester",
    )
    assert run.tags == {"team": "vision"}
    assert run.params == {"lr": 0.01}


def test_a_new_run_with_a_bad_name_is_refused_before_any_store_is_touched() -> None:
    with pytest.raises(InvalidInput, match="experiment"):
        run_ops.new_run("", created_by="tester")
    with pytest.raises(InvalidInput):
        run_ops.new_run("mnist", parent_id="  ", created_by="tester")


async def test_bad_params_create_no_run(store: Store) -> None:
    new = run_ops.new_run("mnist", created_by="tester")
    with pytest.raises(InvalidInput):
        await run_ops.start_run(store, new, {"": 1})
    with pytest.raises(NotFound):
        await run_ops.get_run(store, new.id)


async def test_an_outline_of_fewer_than_one_point_is_refused(store: Store) -> None:
    run_id = await started(store)
    await metric_ops.log_metrics(store, [make_chunk(run_id, "loss", [(0, 0.5, time.time())])])
    for bad in (0, -5, True, 2.5):
        with pytest.raises(InvalidInput, match="points must be a whole number of at least 1"):
            await metric_ops.metric_outline(store, run_id, "loss", points=bad)  # type: ignore[arg-type]
    assert len((await metric_ops.metric_outline(store, run_id, "loss", points=1)).steps) == 1


async def test_a_param_keeps_its_first_value(store: Store) -> None:
    run_id = await started(store)
    assert await run_ops.log_params(store, run_id, {"lr": 0.01, "depth": 3}) == {
        "lr": 0.01,
        "depth": 3,
    }
    with pytest.raises(Conflict):
        await run_ops.log_params(store, run_id, {"lr": 0.1})
    assert (await run_ops.get_run(store, run_id)).params == {"lr": 0.01, "depth": 3}


async def test_tags_and_datasets_land_on_the_run(store: Store) -> None:
    run_id = await started(store)
    await run_ops.set_tags(store, run_id, {"team": "nlp", "stage": "dev"}, "ana")
    dataset = Dataset(role="train", name="mnist", n_rows=60_000, n_cols=784)
    assert await run_ops.log_dataset(store, run_id, dataset) == dataset
    run = await run_ops.get_run(store, run_id)
    assert run.tags == {"team": "nlp", "stage": "dev"}
    assert [(d.role, d.n_rows) for d in run.datasets] == [("train", 60_000)]


async def test_ending_a_run_fires_the_metric_alerts_it_breaks(store: Store) -> None:
    rule = alert_ops.build_rule("acc-low", "tester", metric_key="accuracy", op="<", threshold=0.8)
    await alert_ops.set_alert(store, rule)
    run_id = await started(store)
    await metric_ops.log_metrics(store, [make_chunk(run_id, "accuracy", [(0, 0.5, time.time())])])
    fired = await run_ops.end_run(store, run_id, "completed")
    assert [e.run_id for e in fired] == [run_id]
    assert (await run_ops.get_run(store, run_id)).status == "completed"


async def test_ending_a_run_twice_is_a_conflict(store: Store) -> None:
    run_id = await started(store)
    await run_ops.end_run(store, run_id, "failed", "ValueError: bad\x00data")
    with pytest.raises(Conflict):
        await run_ops.end_run(store, run_id)
    run = await run_ops.get_run(store, run_id)
    assert (run.status, run.error) == ("failed", "ValueError: bad\\x00data")


async def test_a_run_cannot_end_before_it_started_or_with_an_unknown_status(store: Store) -> None:
    run_id = await started(store, started_at=time.time())
    with pytest.raises(InvalidInput, match="before run"):
        await run_ops.end_run(store, run_id, ended_at=time.time() - 3600)
    with pytest.raises(InvalidInput, match="status"):
        await run_ops.end_run(store, run_id, "done")  # type: ignore[arg-type]
    assert (await run_ops.get_run(store, run_id)).status == "running"


async def test_heartbeats_are_checked_run_ids(store: Store) -> None:
    run_id = await started(store)
    await run_ops.heartbeat(store, [run_id])
    with pytest.raises(InvalidInput):
        await run_ops.heartbeat(store, [" "])


async def test_archived_runs_are_deleted_with_the_files_nothing_else_uses(
    store: Store, tmp_path: Path
) -> None:
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    run_id = await started(store, started_at=time.time() - 86_400)
    art = await artifact_ops.put_bytes(
        store, artifacts, run_id, "weights", b"w" * 100, content_type="x", serializer="bytes"
    )
    running = await started(store, started_at=time.time() - 86_400)
    await run_ops.end_run(store, run_id)
    assert await retention.archive_runs(store, retention.days_ago(0.5)) == 1  # not the running one
    assert await retention.delete_archived(store, artifacts) == 1
    with pytest.raises(NotFound):
        await run_ops.get_run(store, run_id)
    assert not await artifacts.contains(StoredObject(art.uri, art.sha256, art.size))
    assert (await run_ops.get_run(store, running)).ended_at is None  # never ended: kept


async def test_deleting_archived_files_without_an_artifact_store_says_so(
    store: Store, tmp_path: Path
) -> None:
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    run_id = await started(store)
    await artifact_ops.put_bytes(
        store, artifacts, run_id, "weights", b"w", content_type="x", serializer="bytes"
    )
    await run_ops.end_run(store, run_id)
    await retention.archive_runs(store, time.time() + 60)
    with pytest.raises(StoreUnavailable, match="no artifact store"):
        await retention.delete_archived(store, None)


async def test_archiving_refuses_a_bad_cutoff(store: Store) -> None:
    with pytest.raises(InvalidInput):
        retention.days_ago(-1)
    with pytest.raises(InvalidInput):
        retention.days_ago(True)
    with pytest.raises(InvalidInput):
        await retention.archive_runs(store, math.inf)


async def test_points_without_steps_continue_after_the_stored_steps(store: Store) -> None:
    run_id = await started(store)
    await metric_ops.log_metrics(store, [make_chunk(run_id, "loss", [(4, 1.0, time.time())])])

    class Point:
        def __init__(self, value: float | None, step: int | None = None) -> None:
            self.key, self.value, self.step, self.timestamp = "loss", value, step, None

    summaries = await metric_ops.next_steps(store, run_id)
    chunks = metric_ops.pack_points(run_id, [Point(0.5), Point(None), Point(0.1, 9)], summaries)
    assert await metric_ops.log_run_metrics(store, run_id, chunks) == 3
    series = await metric_ops.metric_history(store, run_id, "loss")
    assert series.steps == [4, 5, 6, 9]
    assert series.values[2] is None or math.isnan(series.values[2])  # NaN reads as null


async def test_a_metric_batch_sent_twice_is_stored_once(store: Store) -> None:
    run_id = await started(store)
    chunks = [make_chunk(run_id, "loss", [(0, 1.0, time.time())])]
    for _ in range(2):
        await metric_ops.log_run_metrics(store, run_id, chunks, batch="b" * 32)
    assert (await metric_ops.metric_history(store, run_id, "loss")).steps == [0]


async def test_a_metric_chunk_of_another_run_is_refused(store: Store) -> None:
    run_id, other = await started(store), await started(store)
    with pytest.raises(InvalidInput, match="belong"):
        await metric_ops.log_run_metrics(
            store, run_id, [make_chunk(other, "loss", [(0, 1.0, time.time())])]
        )


async def test_an_artifact_is_recorded_only_from_an_uploaded_object(
    store: Store, tmp_path: Path
) -> None:
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    run_id = await started(store)
    obj = await artifacts.put_bytes(b"model bytes")
    art = await artifact_ops.record_object(
        store, artifacts, run_id, "model", obj, content_type="application/x-model"
    )
    assert (art.name, art.sha256, art.content_type) == ("model", obj.sha256, "application/x-model")
    missing = StoredObject(f"objects/00/{'0' * 62}", "0" * 64, 3)
    with pytest.raises(InvalidInput, match="was uploaded"):
        await artifact_ops.record_object(store, artifacts, run_id, "other", missing)
    with pytest.raises(InvalidInput, match="does not name"):
        await artifact_ops.record_object(
            store, artifacts, run_id, "other", StoredObject(obj.uri, "1" * 64, obj.size)
        )
