"""Crashes and concurrent processes: nothing acknowledged is lost, dead runs read as killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from chachaml.client.client import Client
from tests.conftest import make_settings
from tests.support.waiting import wait_for


def spawn(script: str, tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "CHACHAML_STORE": f"sqlite:///{tmp_path / 'shared.db'}",
        "CHACHAML_ARTIFACTS": str(tmp_path / "artifacts"),
        "CHACHAML_HEARTBEAT_SECONDS": "0.2",
        "CHACHA_USER": "worker",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reader(tmp_path: Path) -> Client:
    return Client(
        f"sqlite:///{tmp_path / 'shared.db'}", str(tmp_path / "artifacts"), settings=make_settings()
    )


def test_points_flushed_before_sigkill_survive(tmp_path: Path) -> None:
    proc = spawn(
        """
        import sys, time
        import chachaml as ml
        run = ml.start_run(experiment="crash")
        for i in range(120_000):
            ml.log_metric("loss", 1.0 / (i + 1))
        ml.flush()
        print(run.id, "flushed", flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[1:] == ["flushed"], proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    client = reader(tmp_path)
    try:
        summary = client.get_run(line[0]).metric_summaries["loss"]
        assert summary.count == 120_000 and summary.step == 119_999
    finally:
        client.close()


def test_four_processes_logging_into_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    script = """
        import chachaml as ml
        with ml.run(experiment="concurrent") as run:
            for i in range(50_000):
                ml.log_metric("m", float(i))
                if i % 10_000 == 0:
                    ml.log_params({f"p{i}": i})
        print(run.id, flush=True)
        """
    procs = [spawn(script, tmp_path) for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
    run_ids = [out.split()[0] for out, _ in outputs]
    client = reader(tmp_path)
    try:
        counts = [client.get_run(r).metric_summaries["m"].count for r in run_ids]
        assert counts == [50_000] * 4
        assert sum(counts) == 200_000
        assert {r.status for r in client.runs(experiment="concurrent")} == {"completed"}
    finally:
        client.close()


def test_a_process_killed_mid_run_leaves_the_run_killed(tmp_path: Path) -> None:
    proc = spawn(
        """
        import time
        import chachaml as ml
        run = ml.start_run(experiment="doomed")
        ml.log_metric("m", 1.0)
        ml.flush()
        print(run.id, flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    client = reader(tmp_path)
    try:
        assert client.get_run(run_id).status == "running"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        wait_for(lambda: client.get_run(run_id).status == "killed", 15.0)
        assert [r.id for r in client.runs(status="killed")] == [run_id]
        assert client.runs(status="running") == []
    finally:
        client.close()


def test_runs_left_open_end_at_exit_failed_on_an_unhandled_exception(tmp_path: Path) -> None:
    ok = spawn(
        """
        import chachaml as ml
        run = ml.start_run(experiment="exit")
        ml.log_metric("m", 1.0)
        print(run.id, flush=True)
        """,
        tmp_path,
    )
    crash = spawn(
        """
        import chachaml as ml
        run = ml.start_run(experiment="exit")
        print(run.id, flush=True)
        raise RuntimeError("training diverged")
        """,
        tmp_path,
    )
    ok_out, _ = ok.communicate(timeout=60)
    crash_out, crash_err = crash.communicate(timeout=60)
    assert crash.returncode == 1 and "training diverged" in crash_err
    client = reader(tmp_path)
    try:
        finished = client.get_run(ok_out.strip())
        assert finished.status == "completed" and finished.metrics == {"m": 1.0}
        failed = client.get_run(crash_out.strip())
        assert failed.status == "failed"
        assert failed.error == "RuntimeError: training diverged"
    finally:
        client.close()
