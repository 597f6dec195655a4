"""The pipeline behaviours on both executors (here, and a Dask cluster of worker processes),
against PostgreSQL: chains, failures, retries, timeouts, fan-out, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.client.pipelines.executor import Executor, LocalExecutor
from chachaml.client.pipelines.pipeline import (
    Pipeline,
    PipelineFailed,
    Step,
    pipeline,
    resume_pipeline,
    run_pipeline,
)
from chachaml.errors import InvalidInput
from chachaml.server.app import create_app
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.conftest import make_settings
from tests.support import pipeline_steps as s
from tests.support.readme import CLUSTER_EXAMPLE, code_blocks

# on one xdist worker, as the module's Dask cluster serves all its tests (some ask for it
# only through a parametrized fixture, which the grouping in conftest cannot see)
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("dask")]


@pytest.fixture(params=["local", "dask"])
def executor(request: pytest.FixtureRequest) -> Executor:
    if request.param == "local":
        return LocalExecutor()
    found: Executor = request.getfixturevalue("dask_executor")
    return found


@pytest.fixture
def client(postgres_client: Client) -> Client:
    return postgres_client


def on_dask(executor: Executor) -> bool:
    return not isinstance(executor, LocalExecutor)


def page(client: Client, pipeline_id: str) -> tuple[dict[str, Any], str]:
    """The pipeline page's JSON twin and HTML, from a server app in this process."""

    async def get() -> tuple[dict[str, Any], str]:
        store = await open_store(client.settings.store_url)
        app = create_app(store, artifacts=open_artifact_store(client.settings.artifact_root))
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as web:
                data = (await web.get(f"/api/pipelines/{pipeline_id}")).json()
                return data, (await web.get(f"/pipelines/{pipeline_id}")).text
        finally:
            await store.close()

    return anyio.run(get)


def test_a_chain_runs_each_step_in_its_own_run_where_the_executor_runs_it(
    client: Client, executor: Executor
) -> None:
    result = run_pipeline("etl", [s.load, s.double, s.total], client=client, executor=executor)

    assert result.results["double"] == [2, 4, 6]
    assert result.results["total"]["sum"] == 12
    detail = pipeline(result.id, client=client)
    assert detail.status == "completed" and detail.step_counts == {"completed": 3}
    steps = {step.name: step for step in detail.steps}
    assert steps["double"].result == [2, 4, 6]  # stored for the page and for resume
    runs = {name: client.get_run(step.run_id or "") for name, step in steps.items()}
    assert runs["load"].params == {"source": "memory"}
    assert runs["double"].metrics == {"items": 3.0}
    assert all(r.parent_id == result.run_id for r in runs.values())
    pids = {r.environment["pid"] for r in runs.values()}
    if on_dask(executor):
        assert os.getpid() not in pids and result.results["total"]["pid"] in pids
        assert all(r.tags["chachaml.worker"].endswith(f":{r.environment['pid']}")
                   for r in runs.values())  # fmt: skip
        assert all(r.tags["chachaml.dask_worker"].startswith("tcp://") for r in runs.values())
    else:
        assert pids == {os.getpid()}


def test_a_failed_step_skips_its_dependents_and_retries_come_back(
    client: Client, executor: Executor
) -> None:
    steps = [
        Step("flaky", s.flaky, retries=1, backoff=0.01),
        Step("boom", s.boom, depends_on=[]),
        Step("after", s.last, depends_on=["boom"]),
        Step("slow", s.slow, depends_on=[], timeout=0.3),
    ]
    with pytest.raises(PipelineFailed) as caught:
        run_pipeline("mixed", steps, client=client, executor=executor)

    detail = pipeline(caught.value.pipeline_id, client=client)
    by = {step.name: step for step in detail.steps}
    assert (by["flaky"].status, by["flaky"].attempts, by["flaky"].result) == ("completed", 2, 2)
    assert by["boom"].status == "failed" and "boom in boom" in (by["boom"].error or "")
    assert by["after"].status == "skipped"
    assert by["slow"].status == "failed" and "timed out after 0.3 s" in (by["slow"].error or "")
    assert sorted(caught.value.failed_steps) == ["boom", "slow"]
    assert client.get_run(by["boom"].run_id or "").status == "failed"


def test_a_fan_out_of_50_trials_makes_50_child_runs_and_hands_on_the_list_in_order(
    client: Client, executor: Executor
) -> None:
    progress: list[tuple[str, int, int, int]] = []
    sweep = Pipeline(
        "sweep",
        [
            Step("grid", s.grid),
            Step("trial", s.trial, map_over="grid"),
            Step("best", s.best),
        ],
        client=client,
    )
    result = sweep.run(executor=executor, on_progress=lambda *p: progress.append(p))

    assert result.results["best"] == {"n": 50, "first": 1.0, "best": 1.0}
    assert result.results["trial"] == [1.0 - i / 100 for i in range(50)]
    trial = next(step for step in result.detail.steps if step.name == "trial")
    assert trial.status == "completed" and trial.result == result.results["trial"]
    step_run = client.get_run(trial.run_id or "")
    assert len(step_run.children) == 50
    children = client.search_runs(tags={"chachaml.step": "trial", "chachaml.element": "7"})
    seventh = client.get_run(children[0].id)
    assert (
        len(children) == 1 and seventh.params == {"lr": 0.07} and seventh.parent_id == step_run.id
    )
    assert seventh.metrics == {"score": pytest.approx(0.93)}
    assert progress[0] == ("trial", 0, 0, 50) and progress[-1] == ("trial", 50, 0, 50)
    best = client.best_run("score", "sweep")  # in the pipeline's experiment
    assert best is not None and (best.run.name, best.value) == ("trial[0]", 1.0)
    data, html = page(client, result.id)
    shown = {step["name"]: step for step in data["pipeline"]["steps"]}
    assert shown["trial"]["elements"] == {"done": 50, "failed": 0, "total": 50}
    assert shown["grid"]["elements"] is None and "50 of 50 done" in html
    if on_dask(executor):
        assert shown["grid"]["worker"] == runs_worker(client, shown["grid"]["run_id"])
        assert shown["trial"]["worker"].startswith(("2 workers: ", f"{os.uname().nodename}:"))
        assert data["pipeline"]["dashboard"].startswith("http") and "Dask dashboard" in html
    else:
        assert shown["grid"]["worker"] is None and data["pipeline"]["dashboard"] is None


def runs_worker(client: Client, run_id: str) -> str:
    return str(client.get_run(run_id).tags["chachaml.worker"])


def test_an_element_is_retried_on_its_own(client: Client, executor: Executor) -> None:
    result = run_pipeline(
        "retry-elements",
        [Step("grid", s.grid), Step("odd", s.odd_fails, map_over="grid", retries=1, backoff=0)],
        client=client,
        executor=executor,
    )
    assert result.results["odd"] == list(range(50))
    runs = client.search_runs(tags={"chachaml.step": "odd", "chachaml.element": "3"})
    assert sorted(r.status for r in runs) == ["completed", "failed"]


def test_a_failed_pipeline_resumes_on_the_executor(client: Client, executor: Executor) -> None:
    with pytest.raises(PipelineFailed) as caught:
        run_pipeline("again", [s.first, s.boom, s.last], client=client, executor=executor)
    fixed = [Step("first", s.first), Step("boom", s.rows), Step("last", s.last)]

    result = resume_pipeline(caught.value.pipeline_id, fixed, client=client, executor=executor)

    assert result.results == {"first": {"rows": 3}, "boom": 3, "last": "done"}
    assert [step.attempts for step in result.detail.steps] == [1, 1, 1]
    assert result.detail.resumes == 1


# Dask only


def test_a_step_on_a_worker_logs_through_ml_to_its_own_run(
    client: Client, dask_executor: Executor
) -> None:
    result = run_pipeline("ml", [s.where], client=client, executor=dask_executor)

    pid = result.results["where"]
    assert pid != os.getpid()
    run = client.get_run(result.detail.steps[0].run_id or "")
    assert run.metrics == {"pid": float(pid)} and run.environment["pid"] == pid


def test_a_sqlite_store_the_workers_cannot_share_is_refused_before_anything_runs(
    tmp_path: Path, dask_executor: Executor
) -> None:
    memory = Client(store="sqlite:///:memory:", artifacts=str(tmp_path), settings=make_settings())
    with pytest.raises(InvalidInput, match=r"cannot share.*PostgreSQL"):
        run_pipeline("nowhere", [s.first], client=memory, executor=dask_executor)
    memory.close()


def test_a_sqlite_file_serves_when_every_worker_is_on_this_machine(
    tmp_path: Path, dask_executor: Executor
) -> None:
    lite = Client(store=f"sqlite:///{tmp_path / 'shared.db'}", settings=make_settings())
    try:
        result = run_pipeline("lite", [s.load, s.double], client=lite, executor=dask_executor)
        assert result.results["double"] == [2, 4, 6]
        run = lite.get_run(result.detail.steps[1].run_id or "")
        assert run.metrics == {"items": 3.0} and run.environment["pid"] != os.getpid()
    finally:
        lite.close()


def test_workers_on_another_host_are_remote() -> None:
    from chachaml.client.pipelines.dask import remote_hosts

    here = {"box", "10.0.0.5"}
    local = ["tcp://127.0.0.1:1", "tcp://10.0.0.5:2", "inproc://x/1", "tcp://box:3"]
    assert remote_hosts(local, here) == []
    assert remote_hosts([*local, "tcp://10.0.0.9:4"], here) == ["10.0.0.9"]


def test_the_cli_runs_a_pipeline_on_the_cluster_showing_progress_and_workers(
    client: Client, dask_cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    address = "dask://" + str(dask_cluster.scheduler_address).removeprefix("tcp://")
    store = ["--store", client.settings.store_url, "--artifacts", client.settings.artifact_root]
    target = "tests.support.pipeline_steps:sweep"

    assert main([*store, "pipeline", "run", target, "--executor", address]) == 0

    out = capsys.readouterr().out
    assert "dask dashboard: http" in out
    assert out.count("/50") >= 10 and "50/50" in out
    lines = [line.split() for line in out.splitlines() if "ran on" in line]
    assert [line[0] for line in lines] == ["grid", "trial", "best"]
    assert all(word.rstrip(",").rsplit(":", 1)[1].isdigit() for line in lines for word in line[3:])
    assert main([*store, "pipeline", "run", target, "--executor", "nowhere://x"]) == 2
    assert "dask://host:port" in capsys.readouterr().err


STEPS = """
def grid(ctx):
    return [0.1, 0.5, 0.2]


def trial(ctx):
    ctx.run.log_metric("score", ctx.item)
    return ctx.item


def pick(ctx):
    return max(ctx.prev_result)
"""


def test_the_readme_cluster_example_runs(client: Client, dask_cluster: Any, tmp_path: Path) -> None:
    (block,) = [b for b in code_blocks("python") if b.startswith(CLUSTER_EXAMPLE)]
    address = "dask://" + str(dask_cluster.scheduler_address).removeprefix("tcp://")
    example = STEPS + block.replace("postgresql://ml@db/chachaml", client.settings.store_url)
    example = example.replace("dask://scheduler:8786", address)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.5"
    trials = client.search_runs(tags={"chachaml.step": "trial"})
    assert sorted(str(r.name) for r in trials) == ["trial", "trial[0]", "trial[1]", "trial[2]"]


def test_a_bad_executor_is_refused(client: Client) -> None:
    with pytest.raises(InvalidInput, match="dask://host:port"):
        run_pipeline("x", [s.first], client=client, executor="ray://nowhere")
    with pytest.raises(InvalidInput, match="dask://host:8786"):
        run_pipeline("x", [s.first], client=client, executor="dask://")
