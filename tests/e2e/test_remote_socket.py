"""The real-socket smoke tests of the remote store: a real ``chachaml serve`` over a SQLite
file, and training code in a separate Python process logging to it over HTTP with a token;
and the alert calls only the server can carry out (mute, test-fire) from a Python client.

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

from chachaml.client.alerts import Alerts
from chachaml.client.client import Client
from chachaml.errors import Forbidden, NotFound
from chachaml.store import open_store
from tests.conftest import make_settings
from tests.support.fork_server import ServerFactory
from tests.support.mcp_seed import free_port, stderr_if_exited, wait_until_serving
from tests.support.serve_proc import ServeProcess
from tests.support.webhook_receiver import webhook_receiver

TOKEN = "ada-remote-token"
READER = "rita-read-token"


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


def test_a_python_client_mutes_and_test_fires_rules_through_a_real_server(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    env = {
        "CHACHAML_TOKENS": f"ada:{TOKEN},rita:{READER}:read",
        "CHACHAML_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "CHACHAML_ALERT_ATTEMPTS": "2",
    }
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    server = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    server.start()
    settings = make_settings(token=TOKEN, webhook_allow_private=True)
    writer = Client(server.url, str(tmp_path / "a"), settings=settings)
    reader = Client(server.url, str(tmp_path / "b"), settings=make_settings(token=READER))
    try:
        with webhook_receiver() as receiver:
            api = Alerts(writer)
            api.set_threshold_alert("acc-low", "accuracy", "<", 0.8, webhook_url=receiver.url,
                                    secret="s3")  # fmt: skip
            assert api.mute_alert("acc-low").muted
            assert [(a.name, a.muted) for a in Alerts(reader).alerts()] == [("acc-low", True)]
            with writer.run("remote") as run:
                writer.log_metric("accuracy", 0.1)
            assert api.alert_history() == []  # the server evaluated the run: muted, no event

            receiver.script[:] = [503, 200]
            trial = api.send_test_alert("acc-low")
            assert trial.delivered and [a.status_code for a in trial.attempts] == [503, 200]
            hit = receiver.received[-1]
            assert hit.json["test"] is True and hit.json == trial.payload
            assert "X-Chachaml-Signature" in hit.headers
            assert api.alert_history() == []

            with pytest.raises(Forbidden, match="read scope"):
                Alerts(reader).send_test_alert("acc-low")
            with pytest.raises(Forbidden, match="read scope"):
                Alerts(reader).unmute_alert("acc-low")
            with pytest.raises(NotFound, match=r"alert 'nope' not found \(alerts: acc-low\)"):
                api.mute_alert("nope")
            with pytest.raises(NotFound, match="alert 'nope' not found"):
                api.send_test_alert("nope")

            assert not api.unmute_alert("acc-low").muted
            assert [e.run_id for e in api.check_alerts()] == [run.id]
    finally:
        writer.close()
        reader.close()
        server.stop()

    async def check() -> None:
        store = await open_store(store_url)
        try:
            rule = await store.get_alert("acc-low")
            assert (rule.muted, rule.webhook_url, rule.secret) == (False, receiver.url, "s3")
        finally:
            await store.close()

    anyio.run(check)
