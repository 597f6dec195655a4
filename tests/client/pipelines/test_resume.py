"""Reusable definitions, resume, cancelled pipelines read as killed, event loops.

A pipeline whose process is killed: :mod:`tests.e2e.test_pipelines`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import pytest

from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import (
    Pipeline,
    PipelineFailed,
    Step,
    StepContext,
    pipeline,
    pipelines,
    resume_pipeline,
    run_pipeline,
)
from chachaml.errors import Conflict, InvalidInput
from tests.support.waiting import wait_for

T = TypeVar("T")
WAIT = 10
CALLS: list[str] = []


def poll(probe: Callable[[], T]) -> T:
    """``probe``'s first truthy answer (bounded by ``WAIT`` seconds)."""
    return wait_for(probe, WAIT)


# module-level steps: importable, so resume_pipeline(id) finds them by name


def extract(ctx: StepContext) -> list[int]:
    CALLS.append("extract")
    return [3, 1, 2]


def transform(ctx: StepContext) -> list[int]:
    CALLS.append("transform")
    if CALLS.count("transform") == 1:
        raise RuntimeError("flaky source")
    return sorted(ctx.prev_result)


def publish(ctx: StepContext) -> str:
    CALLS.append("publish")
    return f"{len(ctx.prev_result)} rows"


def test_resume_reruns_only_what_failed_reusing_stored_results(client: Client) -> None:
    CALLS.clear()
    with pytest.raises(PipelineFailed, match="flaky source") as caught:
        run_pipeline("nightly", [extract, transform, publish], client=client)
    pid = caught.value.pipeline_id
    before = pipeline(pid, client=client)
    assert before.steps[0].target == f"{__name__}:extract"

    result = resume_pipeline(pid, client=client)  # callables imported from their targets

    assert CALLS == ["extract", "transform", "transform", "publish"]
    assert result.results == {"extract": [3, 1, 2], "transform": [1, 2, 3], "publish": "3 rows"}
    after = result.detail
    assert (after.status, after.resumes, after.error) == ("completed", 1, None)
    assert after.run_id != before.run_id
    assert after.steps[0].run_id == before.steps[0].run_id  # not re-run
    resumed = client.get_run(after.steps[1].run_id or "")
    assert resumed.parent_id == after.run_id and resumed.status == "completed"
    assert client.get_run(after.run_id or "").tags["chachaml.resume"] == "1"
    with pytest.raises(Conflict, match="is completed"):
        resume_pipeline(pid, client=client)


def test_a_definition_runs_many_times_and_resumes_its_own_runs(client: Client) -> None:
    calls: list[str] = []
    flow = Pipeline("decorated", description="declared once", client=client)

    @flow.step
    def fit(ctx: StepContext) -> object:
        calls.append("fit")
        return object()  # not JSON: kept in memory only

    @flow.step(depends_on=[], retries=1, backoff=0)
    async def features(ctx: StepContext) -> int:
        return 3

    @flow.step(name="score", depends_on=["fit", "features"])
    def score_it(ctx: StepContext) -> str:
        calls.append("score")
        if calls.count("score") == 1:
            raise ValueError("bad split")
        return f"{type(ctx.results['fit']).__name__} x{ctx.results['features']}"

    assert [s.name for s in flow.steps] == ["fit", "features", "score"]
    assert "decorated" in repr(flow)
    with pytest.raises(PipelineFailed) as caught:
        flow.run()
    result = flow.resume(caught.value.pipeline_id)

    # fit's result was not stored, and score needs it: fit runs again; features does not
    assert calls == ["fit", "score", "fit", "score"]
    assert result.results["score"] == "object x3"
    steps = {s.name: s for s in result.detail.steps}
    assert not steps["fit"].result_stored and steps["features"].result == 3
    again = flow.run()
    assert again.id != result.id and again.results["score"] == "object x3"
    assert [p.description for p in pipelines(name="decorated", client=client)] == [
        "declared once"
    ] * 2


def test_resume_refuses_definitions_it_cannot_match(client: Client) -> None:
    with pytest.raises(PipelineFailed) as caught:
        run_pipeline("lambdas", [Step("a", lambda c: 1 / 0)], client=client)
    pid = caught.value.pipeline_id
    with pytest.raises(InvalidInput, match=r"step 'a' .* is not importable"):
        resume_pipeline(pid, client=client)
    with pytest.raises(InvalidInput, match="has steps a; this definition has b"):
        resume_pipeline(pid, [Step("b", print)], client=client)
    assert resume_pipeline(pid, [Step("a", lambda c: "fixed")], client=client).results == {
        "a": "fixed"
    }


def test_prev_result_with_several_dependencies_is_refused(client: Client) -> None:
    steps = [
        Step("a", lambda c: 1, depends_on=[]),
        Step("b", lambda c: 2, depends_on=[]),
        Step("c", lambda c: c.prev_result, depends_on=["a", "b"]),
    ]
    with pytest.raises(PipelineFailed, match=r"prev_result is ambiguous; use ctx\.results"):
        run_pipeline("ambiguous", steps, client=client)


@pytest.mark.anyio
async def test_a_cancelled_pipeline_is_killed_with_its_running_steps(client: Client) -> None:
    started = anyio.Event()

    async def hang(ctx: StepContext) -> None:
        started.set()
        await anyio.Event().wait()

    flow = Pipeline("cancelled", [Step("a", lambda c: 1), hang, Step("b", print)], client=client)
    async with anyio.create_task_group() as tg:
        tg.start_soon(flow.arun)
        with anyio.fail_after(WAIT):
            await started.wait()
        tg.cancel_scope.cancel()

    (info,) = await anyio.to_thread.run_sync(lambda: pipelines(name="cancelled", client=client))
    detail = await anyio.to_thread.run_sync(lambda: pipeline(info.id, client=client))
    assert detail.status == "killed"
    assert [s.status for s in detail.steps] == ["completed", "killed", "pending"]
    hang_run = await client.aget_run(detail.steps[1].run_id or "")
    assert hang_run.status == "killed"
    assert (await client.aget_run(detail.run_id or "")).status == "killed"


@pytest.mark.anyio
async def test_run_pipeline_works_inside_an_event_loop_and_inside_a_run(client: Client) -> None:
    async def shout(ctx: StepContext) -> str:
        return str(ctx.prev_result).upper()

    with client.start_run("outer") as outer:
        result = run_pipeline("in-loop", [lambda c: "hi", shout], client=client)
    assert result.results["shout"] == "HI"
    pipeline_run = await client.aget_run(result.run_id)
    assert pipeline_run.parent_id == outer.id and pipeline_run.experiment == "in-loop"
