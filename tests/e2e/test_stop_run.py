"""An agent stops a training process: ``stop_run`` over MCP, heard by a real subprocess logging
through the store within one heartbeat; the run ends ``stopped`` with who asked and why."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
from mcp import Client as MCPClient

from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store

HEARTBEAT = 1.0

TRAINING = """
    import sys, threading, time
    import chachaml as ml

    said = threading.Lock()  # print() writes piece by piece: two threads' lines would mix

    def say(*words):
        with said:
            print(*words, flush=True)

    def told(request):
        say("on_stop", request.user, request.reason)

    with ml.run(experiment="mnist", name="hopeless", on_stop=told) as run:
        say(run.id)
        deadline = time.monotonic() + 60
        step = 0
        while not ml.should_stop() and time.monotonic() < deadline:
            ml.log_metric("val_loss", 0.9, step=step)
            step += 1
            time.sleep(0.005)
        say("should_stop", time.time())
    say("ended", run.status)
"""


def test_stop_run_over_mcp_stops_a_training_process_within_one_heartbeat(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "CHACHAML_STORE": url, "CHACHAML_ARTIFACTS": str(tmp_path / "a"),
           "CHACHAML_HEARTBEAT_SECONDS": str(HEARTBEAT), "CHACHA_USER": "trainer"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(TRAINING)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 32, proc.stderr.read() if proc.stderr else ""

        async def ask() -> tuple[float, dict[str, object]]:
            store = await open_store(url)
            try:
                server = build_mcp(store, toolsets=["watch"], user="agent-ann")
                async with MCPClient(server) as mcp:
                    asked_at = time.time()
                    result = await mcp.call_tool(
                        "stop_run", {"run_id": run_id, "reason": "val_loss stalled at 0.9"}
                    )
                    assert not result.is_error
                    return asked_at, result.structured_content or {}
            finally:
                await store.close()

        asked_at, request = anyio.run(ask)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert request["user"] == "agent-ann"
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["on_stop"] == "agent-ann val_loss stalled at 0.9"
    latency = float(lines["should_stop"]) - asked_at
    print(f"stop request to should_stop(): {latency * 1000:.0f} ms (heartbeat {HEARTBEAT} s)")
    # one heartbeat, plus scheduling on a busy machine (4 workers on 2 cores: a quarter-second
    # slack was missed by 16 ms); a stop heard only on the second heartbeat fails as often
    assert latency <= HEARTBEAT * 1.5
    assert lines["ended"] == "stopped"

    async def check() -> None:
        store = await open_store(url)
        try:
            run = await store.get_run(run_id)
        finally:
            await store.close()
        assert run.status == "stopped"
        assert run.stop_request is not None
        assert (run.stop_request.user, run.stop_request.reason) == (
            "agent-ann", "val_loss stalled at 0.9"
        )  # fmt: skip
        assert run.metric_summaries["val_loss"].count > 0

    anyio.run(check)
