"""Failures as a cluster has them (a worker SIGKILLed mid-step, a driver SIGKILLed), and
workers recording through a real ``chachaml serve``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chachaml.client.client import Client
from chachaml.client.pipelines.dask import DaskExecutor
from chachaml.client.pipelines.pipeline import (
    Pipeline,
    PipelineFailed,
    Step,
    pipeline,
    pipelines,
    resume_pipeline,
    run_pipeline,
)
from tests.conftest import REMOTE_TOKEN, make_settings
from tests.support import pipeline_steps as s
from tests.support.fork_server import ServerFactory
from tests.support.waiting import wait_for

# in test_executors.py's group: the two modules' Dask clusters run one after the other, on
# one xdist worker, not side by side
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("dask")]
WAIT = 30  # seconds: a worker's death is noticed, and a nanny restarts it, within this


def test_a_worker_killed_mid_step_leaves_the_attempt_killed_and_the_step_retried(
    postgres_client: Client, dask_executor: DaskExecutor
) -> None:
    client = postgres_client
    survivor = Pipeline("survivor", [Step("hold", s.hold, retries=1)], client=client)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(survivor.run, executor=dask_executor)
        (found,) = wait_for(lambda: pipelines(name="survivor", client=client), WAIT)
        step = wait_for(
            lambda: [x for x in pipeline(found.id, client=client).steps if x.run_id], WAIT
        )[0]
        doomed = client.get_run(step.run_id or "").environment["pid"]
        assert doomed != os.getpid()
        os.kill(doomed, signal.SIGKILL)
        try:
            result = running.result(WAIT)
        finally:
            s.flag(found.id).touch()  # releases the attempt should the kill have missed

    assert result.results["hold"] != doomed
    (hold,) = result.detail.steps
    assert (hold.status, hold.attempts) == ("completed", 2)
    attempts = {
        r.tags["chachaml.attempt"]: r
        for r in client.search_runs(tags={"chachaml.pipeline": found.id, "chachaml.step": "hold"})
    }
    assert attempts["1"].status == "killed" and attempts["2"].status == "completed"
    assert client.get_run(attempts["2"].id).environment["pid"] == result.results["hold"]
    s.flag(found.id).unlink()


DRIVER = """
import sys
from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import run_pipeline
from tests.support import pipeline_steps as s

run_pipeline("doomed", [s.first, s.hang, s.last], client=Client(), executor=sys.argv[1])
"""


def test_a_pipeline_whose_driver_is_killed_reads_killed_and_resumes_on_the_cluster(
    postgres_client: Client, dask_executor: DaskExecutor, dask_cluster: Any, tmp_path: Path
) -> None:
    client = postgres_client
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    env = {
        **os.environ,
        "CHACHAML_STORE": client.settings.store_url,
        "CHACHAML_ARTIFACTS": str(tmp_path / "artifacts"),
        "CHACHAML_HEARTBEAT_SECONDS": "0.2",
        "PYTHONPATH": str(Path(s.__file__).parents[2]),
    }
    address = "dask://" + str(dask_cluster.scheduler_address).removeprefix("tcp://")
    driver = subprocess.Popen([sys.executable, str(script), address], env=env, cwd=tmp_path)
    try:
        (found,) = wait_for(
            lambda: [
                p
                for p in pipelines(name="doomed", client=client)
                if p.step_counts.get("running") == 1 and p.step_counts.get("completed") == 1
            ],
            WAIT,
        )
    finally:
        driver.kill()
        driver.wait(WAIT)
    wait_for(lambda: pipeline(found.id, client=client).status == "killed", WAIT)
    detail = pipeline(found.id, client=client)
    assert [x.status for x in detail.steps] == ["completed", "killed", "pending"]
    orphan = detail.steps[1].run_id or ""
    s.flag(found.id).touch()  # the orphaned attempt on its worker gives up
    wait_for(lambda: client.get_run(orphan).status == "failed", WAIT)

    try:
        result = resume_pipeline(found.id, client=client, executor=dask_executor)
    finally:
        s.flag(found.id).unlink()

    assert result.results == {"first": {"rows": 3}, "hang": 3, "last": "done"}
    assert result.detail.status == "completed" and result.detail.resumes == 1
    rerun = client.get_run(result.detail.steps[1].run_id or "")
    assert rerun.environment["pid"] != os.getpid() and "chachaml.worker" in rerun.tags


def test_workers_record_through_a_chachaml_server_with_the_drivers_token(
    server_factory: ServerFactory, dask_cluster: Any, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    with server_factory.serve(db, tmp_path / "artifacts", f"tester:{REMOTE_TOKEN}") as url:
        client = Client(store=url, settings=make_settings(token=REMOTE_TOKEN))
        try:
            result = run_pipeline(
                "remote", [s.load, s.double], client=client, executor=dask_executor
            )
            runs = [client.get_run(x.run_id or "") for x in result.detail.steps]
            assert result.results["double"] == [2, 4, 6]
            assert {r.created_by for r in runs} == {"tester"}
            assert os.getpid() not in {r.environment["pid"] for r in runs}

            bare = DaskExecutor(dask_cluster.scheduler_address, send_credentials=False)
            with bare, pytest.raises(PipelineFailed, match="token") as caught:
                run_pipeline("no-token", [s.load], client=client, executor=bare)
            (load,) = pipeline(caught.value.pipeline_id, client=client).steps
            assert (load.status, load.attempts) == ("failed", 1)  # recorded by the driver
            assert (client.get_run(load.run_id or "").error or "").startswith("never started")
        finally:
            client.close()
