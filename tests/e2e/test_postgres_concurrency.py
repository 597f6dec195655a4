"""PostgreSQL under concurrent writers: tasks and processes lose nothing, promotions stay single."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chachaml.client.client import Client
from chachaml.client.registry import Registry
from chachaml.records.runs import NewRun, RunQuery
from chachaml.store import open_store
from chachaml.store.codec import make_chunk
from tests.conftest import make_settings
from tests.support.services import postgres_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def spawn(script: str, pg_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CHACHAML_STORE": pg_url,
        "CHACHAML_ARTIFACTS": str(tmp_path / "artifacts"),
        "CHACHAML_FLUSH_POINTS": "2000",
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_eight_async_tasks_writing_at_once_lose_nothing(pg_url: str) -> None:
    async def main() -> None:
        store = await open_store(pg_url)
        try:

            async def writer(w: int) -> None:
                for r in range(5):
                    run_id = f"w{w}-r{r}"
                    await store.create_run(
                        NewRun(
                            id=run_id,
                            experiment=f"exp-{r % 2}",  # two writers create each experiment
                            name=run_id,
                            created_by="t",
                            started_at=time.time(),
                            heartbeat_timeout=60,
                        )
                    )
                    for batch in range(4):
                        pts = [(batch * 500 + i, float(i), time.time()) for i in range(500)]
                        await store.log_metrics([make_chunk(run_id, "m", pts)])
                    await store.log_params(run_id, {"w": w, "r": r})

            async with anyio.create_task_group() as tg:
                for w in range(8):
                    tg.start_soon(writer, w)
            runs = await store.query_runs(RunQuery(limit=None))
            assert len(runs) == 40
            assert {e.name: e.run_count for e in await store.list_experiments()} == {
                "exp-0": 24,
                "exp-1": 16,
            }
            for run in runs:
                assert (await store.metric_summaries(run.id))["m"].count == 2000
        finally:
            await store.close()

    anyio.run(main)


def test_eight_processes_logging_and_creating_runs_lose_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    script = """
        import chachaml as ml
        for r in range(3):
            with ml.run(experiment="procs", params={"r": r}) as run:
                for i in range(10_000):
                    ml.log_metric("loss", 1.0 / (i + 1))
                ml.log_metric("done", 1.0)
                print(run.id, flush=True)
        """
    procs = [spawn(script, pg_url, tmp_path) for _ in range(8)]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    run_ids = [line for out, _ in outputs for line in out.split()]
    assert len(run_ids) == 24
    client = Client(pg_url, str(tmp_path / "artifacts"), settings=make_settings())
    try:
        runs = client.runs(experiment="procs", limit=None)
        assert sorted(r.id for r in runs) == sorted(run_ids)
        for run_id in run_ids:
            summaries = client.get_run(run_id).metric_summaries
            assert summaries["loss"].count == 10_000 and summaries["done"].count == 1
            # the points themselves, not only the summary: each step once, none lost
            assert list(client.metric_history(run_id, "loss").steps) == list(range(10_000))
    finally:
        client.close()


def test_two_processes_promoting_at_once_leave_one_production_version(
    pg_url: str, tmp_path: Path
) -> None:
    client = Client(pg_url, str(tmp_path / "artifacts"), settings=make_settings())
    registry = Registry(client)
    try:
        for v in range(2):
            with client.run(experiment="reg") as run:
                client.log_artifact("model", {"v": v})
            registry.register_model("racer", run_id=run.id)
        go = tmp_path / "go"
        script = """
            import os, sys, time
            from chachaml.client.registry import Registry
            version, go = int(sys.argv[1]), sys.argv[2]
            registry = Registry()
            registry.model("racer")  # connect before the start line
            print("ready", flush=True)
            while not os.path.exists(go):
                time.sleep(0.001)
            for _ in range(10):
                registry.promote("racer", version, "production")
                registry.promote("racer", version, "staging")
            registry.promote("racer", version, "production")
            print("ok", flush=True)
            """
        env = {**os.environ, "CHACHAML_STORE": pg_url, "CHACHAML_ARTIFACTS": str(tmp_path)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(script), str(v), str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for v in (1, 2)
        ]
        for proc in procs:  # both processes are connected and waiting at the start line
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and out.strip() == "ok", err
        versions = registry.model_versions("racer")
        assert [v.stage for v in versions].count("production") == 1
        detail = registry.model("racer")
        assert detail.production_version in (1, 2)
        stage_events = [e for e in detail.history if e.kind == "stage"]
        assert len(stage_events) >= 2 * 21  # every promotion and demotion was recorded
    finally:
        client.close()


def test_terminated_connections_are_replaced_and_no_acknowledged_point_is_lost(
    pg_url: str, tmp_path: Path
) -> None:
    import uuid

    import asyncpg

    from tests.support.services import POSTGRES_URL

    name = f"chachaml-drop-{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}&application_name={name}"

    async def terminate() -> int:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            killed = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
            return len(killed)
        finally:
            await admin.close()

    client = Client(url, str(tmp_path / "artifacts"), settings=make_settings())
    try:
        with client.run(experiment="drop") as run:
            for i in range(5000):
                client.log_metric("m", float(i))
            client.flush()  # acknowledged: these must survive
            assert anyio.run(terminate) >= 1
            client.log_params({"after": "reconnect"})  # a write on a fresh connection
            for i in range(5000, 10_000):
                client.log_metric("m", float(i))
        stored = client.get_run(run.id)
        assert stored.metric_summaries["m"].count == 10_000
        assert stored.params == {"after": "reconnect"} and stored.status == "completed"
    finally:
        client.close()
