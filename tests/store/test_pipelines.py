"""Pipelines in the Store contract on every backend: transitions, conflicts, killed, listing."""

from __future__ import annotations

import time
import uuid

import pytest

from chachaml.client.remote import RemoteStore
from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records.pipelines import NewPipeline, NewPipelineStep
from chachaml.records.runs import NewRun
from chachaml.store import Store
from chachaml.tools import pipelines as ops

pytestmark = [pytest.mark.anyio, pytest.mark.contract]


async def new_run(store: Store, *, started: float | None = None, timeout: float = 60) -> str:
    run_id = uuid.uuid4().hex
    await store.create_run(
        NewRun(
            id=run_id,
            experiment="pipes",
            name="p",
            created_by="tester",
            started_at=time.time() if started is None else started,
            heartbeat_timeout=timeout,
        )
    )
    return run_id


async def new_pipeline(store: Store, run_id: str, name: str = "etl", at: float = 0) -> str:
    pid = uuid.uuid4().hex
    await ops.create_pipeline(
        store,
        NewPipeline(
            id=pid,
            name=name,
            run_id=run_id,
            created_by="tester",
            started_at=at or time.time(),
            max_parallel=2,
            steps=[
                NewPipelineStep(name="a", target="m:a", retries=2, backoff=0.5, timeout=3),
                NewPipelineStep(name="b", depends_on=["a"]),
            ],
        ),
    )
    return pid


async def test_steps_move_pending_running_completed_and_skipped(store: Store) -> None:
    run_id = await new_run(store)
    pid = await new_pipeline(store, run_id)
    detail = await ops.get_pipeline(store, pid)
    assert detail.status == "running" and detail.step_counts == {"pending": 2}
    a = detail.steps[0]
    assert (a.target, a.retries, a.backoff, a.timeout) == ("m:a", 2, 0.5, 3)
    step_run = await new_run(store)
    await ops.start_step(store, pid, "a", step_run, 1, 100.0)
    await ops.start_step(store, pid, "a", step_run, 2, 100.0)  # a retry
    await ops.end_step(store, pid, "a", "completed", 101.5, None, '{"rows": 3}')
    await ops.skip_steps(store, pid, ["b"], "skipped: step 'x' failed", 102.0)
    await ops.end_pipeline(store, pid, "failed", "step 'x' failed", 103.0)

    detail = await ops.get_pipeline(store, pid)
    a, b = detail.steps
    assert (a.status, a.attempts, a.run_id, a.result, a.result_stored) == (
        "completed",
        2,
        step_run,
        {"rows": 3},
        True,
    )
    assert a.duration_seconds == 1.5
    assert (b.status, b.error, b.result_stored) == ("skipped", "skipped: step 'x' failed", False)
    assert (detail.status, detail.error) == ("failed", "step 'x' failed")
    assert detail.step_counts == {"completed": 1, "skipped": 1}


async def test_writes_against_the_wrong_state_are_conflicts(store: Store) -> None:
    pid = await new_pipeline(store, await new_run(store))
    with pytest.raises(Conflict, match=r"step 'a' of pipeline .* is pending; it cannot become"):
        await ops.end_step(store, pid, "a", "completed", time.time())
    await ops.start_step(store, pid, "a", await new_run(store), 1, time.time())
    with pytest.raises(Conflict, match="is running; it cannot become skipped"):
        await ops.skip_steps(store, pid, ["a"], "no", time.time())
    await ops.end_step(store, pid, "a", "failed", time.time(), "boom")
    with pytest.raises(Conflict, match="is failed"):
        await ops.end_step(store, pid, "a", "completed", time.time())
    await ops.end_pipeline(store, pid, "completed", None, time.time())
    with pytest.raises(Conflict, match="already ended"):
        await ops.end_pipeline(store, pid, "failed", None, time.time())
    with pytest.raises(Conflict, match="is completed; only a pipeline that failed"):
        await ops.resume_pipeline(store, pid, await new_run(store), ["a"], time.time())


async def test_unknown_pipelines_steps_and_runs_are_not_found(store: Store) -> None:
    pid = await new_pipeline(store, await new_run(store))
    with pytest.raises(NotFound, match="pipeline 'nope' not found"):
        await ops.get_pipeline(store, "nope")
    with pytest.raises(NotFound, match=r"has no step 'c' \(its steps: a, b\)"):
        await ops.start_step(store, pid, "c", await new_run(store), 1, time.time())
    with pytest.raises(NotFound, match="run 'ghost' not found"):
        await ops.start_step(store, pid, "a", "ghost", 1, time.time())
    again = NewPipeline(
        id=pid, name="x", run_id=await new_run(store), created_by="t", started_at=1.0,
        max_parallel=1, steps=[],
    )  # fmt: skip
    with pytest.raises(Conflict, match="already exists"):
        await store.create_pipeline(again)
    with pytest.raises(InvalidInput, match="pipeline_id"):
        await ops.get_pipeline(store, " ")
    with pytest.raises(InvalidInput, match="status must be one of"):
        await ops.list_pipelines(store, status="sleeping")
    with pytest.raises(InvalidInput, match="attempt"):
        await ops.start_step(store, pid, "a", "r", 0, time.time())


async def test_a_pipeline_whose_run_stopped_beating_reads_as_killed(store: Store) -> None:
    dead_run = await new_run(store, started=time.time() - 100, timeout=5)
    dead = await new_pipeline(store, dead_run, "dead", at=time.time() - 100)
    await ops.start_step(store, dead, "a", await new_run(store), 1, time.time() - 99)
    live = await new_pipeline(store, await new_run(store), "live")

    detail = await ops.get_pipeline(store, dead)
    assert detail.status == "killed" and detail.steps[0].status == "killed"
    assert detail.steps[1].status == "pending"
    assert detail.step_counts == {"killed": 1, "pending": 1}
    assert [p.id for p in await ops.list_pipelines(store, status="killed")] == [dead]
    assert [p.id for p in await ops.list_pipelines(store, status="running")] == [live]

    resumed_run = await new_run(store)
    with pytest.raises(Conflict, match="is running"):
        await ops.resume_pipeline(store, live, resumed_run, ["a"], time.time())
    detail = await ops.resume_pipeline(store, dead, resumed_run, ["a", "b"], time.time())
    assert (detail.status, detail.run_id, detail.resumes) == ("running", resumed_run, 1)
    assert [(s.status, s.attempts, s.run_id) for s in detail.steps] == [("pending", 0, None)] * 2


async def test_one_step_reads_as_the_whole_pipeline_shows_it(store: Store) -> None:
    pid = await new_pipeline(store, await new_run(store))
    step_run = await new_run(store)
    await ops.start_step(store, pid, "a", step_run, 2, time.time())
    await ops.end_step(store, pid, "a", "completed", time.time(), None, '{"rows": 3}')
    detail = await ops.get_pipeline(store, pid)
    assert [await ops.get_step(store, pid, s.name) for s in detail.steps] == detail.steps
    a = await ops.get_step(store, pid, "a")
    assert (a.status, a.attempts, a.run_id, a.result) == ("completed", 2, step_run, {"rows": 3})

    dead_run = await new_run(store, started=time.time() - 100, timeout=5)
    dead = await new_pipeline(store, dead_run, "dead", at=time.time() - 100)
    await ops.start_step(store, dead, "a", await new_run(store), 1, time.time() - 99)
    assert (await ops.get_step(store, dead, "a")).status == "killed"  # its pipeline died

    with pytest.raises(NotFound, match=r"has no step 'c' \(its steps: a, b\)"):
        await ops.get_step(store, pid, "c")
    with pytest.raises(NotFound, match="pipeline 'nope' not found"):
        await ops.get_step(store, "nope", "a")
    with pytest.raises(InvalidInput, match="step name"):
        await ops.get_step(store, pid, "")


async def test_a_step_starts_with_its_new_run_in_one_write(store: Store) -> None:
    pid = await new_pipeline(store, await new_run(store))
    parent = await new_run(store)
    attempt_run = NewRun(id=uuid.uuid4().hex, experiment="pipes", name="a", created_by="tester",
                         started_at=time.time(), heartbeat_timeout=60, parent_id=parent,
                         tags={"k": "v"})  # fmt: skip
    await ops.start_step_run(store, attempt_run, pid, "a", 1)
    run = await store.get_run(attempt_run.id)
    assert (run.status, run.parent_id, run.tags["k"]) == ("running", parent, "v")
    a = await ops.get_step(store, pid, "a")
    assert (a.status, a.attempts, a.run_id) == ("running", 1, attempt_run.id)
    assert a.started_at == run.started_at

    await ops.end_step(store, pid, "a", "completed", time.time())
    late = attempt_run.model_copy(update={"id": uuid.uuid4().hex})
    with pytest.raises(Conflict, match="is completed; it cannot become running"):
        await ops.start_step_run(store, late, pid, "a", 2)
    if isinstance(store, RemoteStore):  # two requests: the run it started ended failed
        assert (await store.get_run(late.id)).status == "failed"
    else:  # one transaction: nothing stored
        with pytest.raises(NotFound):
            await store.get_run(late.id)
    assert (await ops.get_step(store, pid, "a")).attempts == 1
    with pytest.raises(NotFound, match="has no step 'c'"):
        await ops.start_step_run(store, late.model_copy(update={"id": "x1"}), pid, "c", 1)
    with pytest.raises(InvalidInput, match="attempt"):
        await ops.start_step_run(store, late, pid, "a", 0)


async def test_a_step_and_its_run_complete_in_one_write(store: Store) -> None:
    pid = await new_pipeline(store, await new_run(store))
    first, second = await new_run(store), await new_run(store)
    await ops.start_step(store, pid, "a", first, 1, time.time())
    await ops.start_step(store, pid, "b", second, 1, time.time())
    await store.request_stop(second, "tester", "enough", time.time())

    assert await ops.complete_step_run(store, pid, "a", first, time.time(), "[1, 2]") == []
    a = await ops.get_step(store, pid, "a")
    assert (a.status, a.result, a.attempts, a.run_id) == ("completed", [1, 2], 1, first)
    assert (await store.get_run(first)).status == "completed"
    await ops.complete_step_run(store, pid, "b", second, time.time(), None)
    assert (await store.get_run(second)).status == "stopped"  # asked to stop: as end_run says
    assert (await ops.get_step(store, pid, "b")).status == "completed"

    pid = await new_pipeline(store, await new_run(store))
    await ops.start_step(store, pid, "a", first, 1, time.time())
    with pytest.raises(Conflict, match="has already ended"):  # its run ended: nothing changes
        await ops.complete_step_run(store, pid, "a", first, time.time(), None)
    assert (await ops.get_step(store, pid, "a")).status == "running"
    with pytest.raises(NotFound, match="run 'ghost' not found"):
        await ops.complete_step_run(store, pid, "a", "ghost", time.time(), None)


async def test_pipelines_list_newest_first_by_name_with_a_limit(store: Store) -> None:
    ids = [
        await new_pipeline(store, await new_run(store), name, at=1000.0 + i)
        for i, name in enumerate(["etl", "train", "etl"])
    ]
    assert [p.id for p in await ops.list_pipelines(store)] == ids[::-1]
    assert [p.id for p in await ops.list_pipelines(store, name="etl")] == [ids[2], ids[0]]
    assert [p.id for p in await ops.list_pipelines(store, limit=1)] == [ids[2]]


def test_results_are_stored_only_when_json_gives_them_back_unchanged() -> None:
    assert ops.encode_result({"a": [1, 2.5, None, "x"]}) == '{"a": [1, 2.5, null, "x"]}'
    assert ops.encode_result(None) == "null"
    for value in ((1, 2), {1: "a"}, float("nan"), object(), "x" * 1_000_001):
        assert ops.encode_result(value) is None
