"""Pipelines end to end on both backends: chains, DAGs, concurrency, failure, retries, timeouts."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

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
    run_pipeline,
)
from chachaml.client.stops import Stops
from chachaml.errors import InvalidInput
from chachaml.records.pipelines import PipelineDetail, PipelineStep
from tests.conftest import remote_transport
from tests.support.waiting import wait_for

T = TypeVar("T")
WAIT = 10  # seconds: the bound of every wait on another step


@pytest.fixture
def store_url(tracking_store_url: str) -> str:
    """This module's ``client`` tests also run against a server (in this process)."""
    return tracking_store_url


def poll(probe: Callable[[], T]) -> T:
    """``probe``'s first truthy answer (bounded by ``WAIT`` seconds)."""
    return wait_for(probe, WAIT, "another client to see the pipeline")


def steps_by_name(detail: PipelineDetail) -> dict[str, PipelineStep]:
    return {s.name: s for s in detail.steps}


def test_a_step_that_ends_its_own_run_still_completes_with_its_result(client: Client) -> None:
    def early(ctx: StepContext) -> int:
        ctx.run.end("completed")  # its run ends here, the step when it returns
        return 7

    result = run_pipeline("own-end", [early, lambda ctx: ctx.prev_result + 1], client=client)

    steps = steps_by_name(result.detail)
    assert (steps["early"].status, steps["early"].result) == ("completed", 7)
    assert result.results["<lambda>"] == 8
    assert client.get_run(steps["early"].run_id or "").status == "completed"


def test_a_plain_list_is_a_chain_and_every_step_is_a_child_run(client: Client) -> None:
    def load(ctx: StepContext) -> list[int]:
        client.log_param("source", "memory")
        return [1, 2, 3]

    async def double(ctx: StepContext) -> list[int]:
        client.log_metric("items", len(ctx.prev_result))
        return [x * 2 for x in ctx.prev_result]

    def total(ctx: StepContext) -> dict[str, Any]:
        ctx.run.log_metric("sum", float(sum(ctx.results["double"])))
        return {"sum": sum(ctx.prev_result), "pipeline": ctx.pipeline_id, "me": ctx.name}

    result = run_pipeline("etl", [load, double, total], "toy chain", client=client)

    assert result.results["total"] == {"sum": 12, "pipeline": result.id, "me": "total"}
    detail = pipeline(result.id, client=client)
    assert detail == result.detail
    assert (detail.name, detail.description, detail.status) == ("etl", "toy chain", "completed")
    assert detail.step_counts == {"completed": 3}
    steps = steps_by_name(detail)
    assert [s.depends_on for s in detail.steps] == [[], ["load"], ["double"]]
    assert steps["double"].result == [2, 4, 6] and steps["double"].result_stored
    for before, after in (("load", "double"), ("double", "total")):
        assert steps[before].ended_at <= steps[after].started_at  # type: ignore[operator]
    pipeline_run = client.get_run(result.run_id)
    assert pipeline_run.experiment == "etl" and pipeline_run.status == "completed"
    assert pipeline_run.tags["chachaml.pipeline"] == result.id
    assert sorted(pipeline_run.children) == sorted(s.run_id for s in detail.steps)  # type: ignore[type-var]
    load_run = client.get_run(steps["load"].run_id or "")
    double_run = client.get_run(steps["double"].run_id or "")
    total_run = client.get_run(steps["total"].run_id or "")
    assert load_run.params == {"source": "memory"} and load_run.parent_id == result.run_id
    assert double_run.metrics == {"items": 3.0} and double_run.name == "double"
    assert total_run.metrics == {"sum": 12.0}
    assert total_run.tags["chachaml.step"] == "total"
    assert client.active_run() is None


def test_a_diamond_runs_its_middle_branches_at_the_same_time(client: Client) -> None:
    b_started, c_started = threading.Event(), threading.Event()

    def b(ctx: StepContext) -> str:
        b_started.set()
        assert c_started.wait(WAIT), "c never ran while b was running"
        return "b"

    async def c(ctx: StepContext) -> str:
        c_started.set()
        started = await anyio.to_thread.run_sync(b_started.wait, WAIT)
        assert started, "b never ran while c was running"
        return "c"

    diamond = Pipeline(
        "diamond",
        [
            Step("a", lambda ctx: 1),
            Step("b", b, depends_on=["a"]),
            Step("c", c, depends_on=["a"]),
            Step("d", lambda ctx: dict(ctx.results), depends_on=["b", "c"]),
        ],
        max_parallel=2,
        client=client,
    )
    result = diamond.run()

    assert result.results["d"] == {"b": "b", "c": "c"}
    steps = steps_by_name(result.detail)
    sb, sc = steps["b"], steps["c"]
    assert sb.started_at < sc.ended_at and sc.started_at < sb.ended_at  # type: ignore[operator]
    assert steps["d"].started_at >= max(sb.ended_at, sc.ended_at)  # type: ignore[operator, type-var]


def test_independent_steps_run_up_to_max_parallel_at_once(client: Client) -> None:
    lock = threading.Lock()
    running, peak = [0], [0]
    pairs = threading.Barrier(2, timeout=WAIT)  # passes only when two steps run together

    def work(ctx: StepContext) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        pairs.wait()
        with lock:
            running[0] -= 1
        return ctx.attempt

    steps = [Step(f"s{i}", work, depends_on=[]) for i in range(6)]
    result = run_pipeline("wide", steps, max_parallel=2, client=client)

    assert peak[0] == 2
    assert result.detail.step_counts == {"completed": 6}


def test_a_failed_step_skips_its_dependents_and_fails_the_pipeline(client: Client) -> None:
    def explode(ctx: StepContext) -> None:
        client.log_metric("progress", 0.5)
        raise ValueError("diverged")

    steps = [
        Step("prepare", lambda ctx: 1),
        Step("train", explode),
        Step("evaluate", lambda ctx: 2),
        Step("report", lambda ctx: 3),
        Step("docs", lambda ctx: "independent", depends_on=[]),
    ]
    with pytest.raises(PipelineFailed) as caught:
        run_pipeline("doomed", steps, client=client)

    failure = caught.value
    detail = pipeline(failure.pipeline_id, client=client)
    steps_now = steps_by_name(detail)
    train_run = steps_now["train"].run_id
    assert failure.step == "train" and failure.run_id == train_run
    assert "'train'" in str(failure) and str(train_run) in str(failure)
    assert "ValueError: diverged" in str(failure)
    assert isinstance(failure.__cause__, ValueError)
    assert detail.status == "failed" and detail.error == "step 'train' failed: ValueError: diverged"
    assert {n: s.status for n, s in steps_now.items()} == {
        "prepare": "completed",
        "train": "failed",
        "evaluate": "skipped",
        "report": "skipped",
        "docs": "completed",
    }
    assert steps_now["train"].error == "ValueError: diverged"
    assert steps_now["report"].error == "skipped: step 'train' failed"
    assert steps_now["report"].run_id is None and steps_now["report"].attempts == 0
    assert detail.step_counts == {"completed": 2, "failed": 1, "skipped": 2}
    run = client.get_run(str(train_run))
    assert run.status == "failed" and run.error == "ValueError: diverged"
    assert run.metrics == {"progress": 0.5}
    assert client.get_run(detail.run_id or "").status == "failed"


def test_retries_wait_with_exponential_backoff_each_attempt_its_own_run(client: Client) -> None:
    calls: list[int] = []

    def flaky(ctx: StepContext) -> str:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt}")
        return "ok"

    result = run_pipeline("flaky", [Step("fetch", flaky, retries=3, backoff=0.05)], client=client)

    assert calls == [1, 2, 3] and result.results == {"fetch": "ok"}
    step = result.detail.steps[0]
    assert step.attempts == 3 and step.status == "completed"
    attempts = sorted(client.runs(experiment="flaky", limit=None), key=lambda r: r.started_at)[
        1:
    ]  # the first run is the pipeline's
    assert [r.status for r in attempts] == ["failed", "failed", "completed"]
    assert [r.tags["chachaml.attempt"] for r in attempts] == ["1", "2", "3"]
    assert attempts[0].error == "ConnectionError: attempt 1"
    assert step.run_id == attempts[2].id
    gaps = [
        (later.started_at - earlier.ended_at).total_seconds()  # type: ignore[operator]
        for earlier, later in itertools.pairwise(attempts)
    ]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1


def test_a_step_that_exhausts_its_retries_fails(client: Client) -> None:
    def always(ctx: StepContext) -> None:
        raise RuntimeError(f"no luck {ctx.attempt}")

    with pytest.raises(PipelineFailed, match="no luck 3"):
        run_pipeline("unlucky", [Step("try", always, retries=2, backoff=0)], client=client)
    (info,) = pipelines(name="unlucky", client=client)
    step = pipeline(info.id, client=client).steps[0]
    assert (step.status, step.attempts, step.error) == ("failed", 3, "RuntimeError: no luck 3")


def test_steps_that_outlive_their_timeout_fail(client: Client) -> None:
    release = threading.Event()

    def stuck(ctx: StepContext) -> None:
        release.wait(WAIT)

    async def stuck_async(ctx: StepContext) -> None:
        await anyio.Event().wait()

    try:
        with pytest.raises(PipelineFailed, match=r"timed out after 0\.2 s"):
            run_pipeline(
                "slow",
                [
                    Step("sync", stuck, timeout=0.2, depends_on=[]),
                    Step("async", stuck_async, timeout=0.2, depends_on=[]),
                ],
                client=client,
            )
    finally:
        release.set()
    (info,) = pipelines(name="slow", client=client)
    detail = pipeline(info.id, client=client)
    for step in detail.steps:
        assert step.status == "failed"
        assert step.error == f"TimeoutError: step {step.name!r} timed out after 0.2 s"
        assert step.duration_seconds is not None and step.duration_seconds < WAIT
        assert client.get_run(step.run_id or "").status == "failed"


def test_live_status_is_visible_from_another_client(
    client: Client, request: pytest.FixtureRequest
) -> None:
    release = threading.Event()
    outcome: list[Any] = []
    url = client.settings.store_url
    other = Client(url, settings=client.settings, transport=remote_transport(request, url))

    def gate(ctx: StepContext) -> str:
        assert release.wait(WAIT)
        return "opened"

    worker = threading.Thread(
        target=lambda: outcome.append(
            run_pipeline("live", [Step("gate", gate), Step("after", lambda c: 1)], client=client)
        )
    )
    worker.start()
    try:
        found = poll(lambda: pipelines(status="running", client=other))
        while found[0].step_counts.get("running") != 1:
            found = poll(lambda: pipelines(status="running", client=other))
        detail = pipeline(found[0].id, client=other)
        assert [(s.name, s.status) for s in detail.steps] == [
            ("gate", "running"),
            ("after", "pending"),
        ]
        assert detail.steps[0].started_at is not None and detail.steps[0].ended_at is None
        assert other.get_run(detail.run_id or "").status == "running"
    finally:
        release.set()
        worker.join(WAIT)
        other.close()
    assert outcome and outcome[0].detail.status == "completed"
    assert pipeline(outcome[0].id, client=client).steps[1].status == "completed"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "at least one step"),
        ([Step("a", print), Step("a", print)], "duplicate step name 'a'"),
        ([Step("a", print, depends_on=["ghost"])], "unknown step 'ghost'"),
        ([Step("a", print, depends_on=["a"])], "depends on itself"),
        (
            [
                Step("a", print, depends_on=["c"]),
                Step("b", print, depends_on=["a"]),
                Step("c", print, depends_on=["b"]),
            ],
            "cycle: a -> c -> b -> a",
        ),
        (["not callable"], "Step or a callable"),
    ],
)
def test_bad_graphs_are_refused_before_anything_runs(
    client: Client, steps: list[Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        run_pipeline("bad", steps, client=client)
    assert pipelines(client=client) == [] and client.runs() == []


def test_bad_step_options_are_refused() -> None:
    for kwargs, message in (
        ({"retries": -1}, "retries of step 's'"),
        ({"backoff": -1.0}, "backoff of step 's'"),
        ({"timeout": 0}, "timeout of step 's'"),
        ({"depends_on": [1]}, "depends_on of step 's'"),
    ):
        with pytest.raises(InvalidInput, match=message):
            Step("s", print, **kwargs)
    with pytest.raises(InvalidInput, match="needs a callable"):
        Step("s", "print")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="max_parallel"):
        Pipeline("p", [print], max_parallel=0)


def test_a_pipeline_asked_to_stop_skips_its_remaining_steps_and_ends_stopped(
    client: Client,
) -> None:
    def train(ctx: StepContext) -> int:
        assert ctx.run.parent_id is not None
        Stops(client).stop_run(ctx.run.parent_id, "budget spent")  # as an agent would, from outside
        # the step's run is asked too, being the pipeline run's child
        wait_for(ctx.run.should_stop, WAIT, "the stop reached the step's run")
        return 1

    done = run_pipeline(
        "sweep", [Step("train", train), Step("evaluate", lambda ctx: 1)], client=client
    )
    assert done.detail.status == "stopped" and "budget spent" in (done.detail.error or "")
    steps = {s.name: s for s in done.detail.steps}
    assert steps["train"].status == "completed" and steps["evaluate"].status == "skipped"
    assert "asked to stop by tester: budget spent" in (steps["evaluate"].error or "")
    assert client.get_run(done.run_id).status == "stopped"
    assert client.get_run(steps["train"].run_id or "").status == "stopped"
