"""The one real-socket smoke test of the remote store: a real ``chachaml serve`` over a SQLite
file, and training code in a separate Python process logging to it over HTTP with a token.

Everything else about the remote store reaches the same app in the test's process through
``httpx.ASGITransport`` (:mod:`tests.support.remote_server`): see
:mod:`tests.client.remote.test_tracking` and the contract suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chachaml.store import open_store
from tests.support.mcp_seed import free_port, stderr_if_exited, wait_until_serving

TOKEN = "ada-remote-token"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    return {**env, **extra}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A real ``chachaml serve`` over a SQLite file; yields its base URL."""
    port = free_port()
    env = _env(CHACHAML_TOKENS=f"ada:{TOKEN}", CHACHAML_STORE=f"sqlite:///{tmp_path / 's.db'}",
               CHACHAML_ARTIFACTS=str(tmp_path / "artifacts"))  # fmt: skip
    cmd = [sys.executable, "-m", "chachaml.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, lambda: stderr_if_exited(proc))
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


SCRIPT = """
import chachaml as ml

with ml.run("remote", name="r1", params={"lr": 0.1}) as run:
    for step in range(2000):
        ml.log_metric("loss", 1.0 / (step + 1), step=step)
    ml.set_tag("where", "far")
    ml.log_artifact("weights", {"w": [1, 2, 3]})
    ml.flush()
    print(run.id)
    print(ml.get_run(run.id).metrics["loss"])
    print(ml.load_artifact(run.id, "weights"))
print(ml.best_run("loss", "remote", direction="min").run.id)
"""


def test_a_run_logged_from_python_over_http_lands_in_the_store(server: str, tmp_path: Path) -> None:
    env = _env(CHACHAML_STORE=server, CHACHAML_TOKEN=TOKEN, CHACHA_USER="someone-else")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id, last, weights, best = done.stdout.split("\n")[:4]
    assert float(last) == pytest.approx(1 / 2000)
    assert weights == "{'w': [1, 2, 3]}"
    assert best == run_id

    async def check() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 's.db'}")
        try:
            run = await store.get_run(run_id)
            assert (run.status, run.created_by, run.params) == ("completed", "ada", {"lr": 0.1})
            assert run.tags["where"] == "far"
            assert len((await store.metric_history(run_id, "loss")).steps) == 2000
            assert [a.name for a in run.artifacts] == ["weights"]
        finally:
            await store.close()

    anyio.run(check)
