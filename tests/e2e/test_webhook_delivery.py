"""Finding 10 and the webhook part of 12 with real processes: a ``chachaml serve`` answers the
metrics POST that fires an alert without waiting on a webhook that hangs, and the queue is
delivered by a running ``chachaml mcp`` or ``chachaml serve``.

The in-process half (the worker, retries, private targets, error bodies) is in
:mod:`tests.tools.test_webhooks`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chachaml.settings import Settings
from chachaml.store import ServerStore
from tests.support.alert_firing import delivered, fire, history, new_run, raw_rule
from tests.support.fork_server import ServerFactory
from tests.support.waiting import await_for
from tests.support.webhook_receiver import HANG, Receiver, webhook_receiver

pytestmark = pytest.mark.anyio

TOKEN = "ada-secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


async def test_the_metrics_post_that_fires_an_alert_does_not_wait_for_a_dead_webhook(
    store: ServerStore,
    store_url: str,
    tmp_path: Path,
    receiver: Receiver,
    server_factory: ServerFactory,
) -> None:
    receiver.script[:] = [HANG] * 10  # accepts the connection, never answers
    await raw_rule(store, receiver.url)
    run_id = await new_run(store)
    serving = server_factory.serve(store_url, tmp_path / "artifacts", f"ada:{TOKEN}")
    with serving as base:  # a real `chachaml serve` process over the same database
        async with httpx.AsyncClient(base_url=base) as http:
            started = time.monotonic()
            answer = await http.post(
                f"/api/w/runs/{run_id}/metrics", json={"accuracy": 0.5}, headers=AUTH, timeout=30
            )
            took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        # waiting on the webhook would take its whole timeout; half is slack for a busy machine
        assert took < Settings.alert_timeout / 2, f"the metrics POST took {took:.1f} s"
        event = await history(store)
        assert event.run_id == run_id and event.delivery != "delivered"
        # the server's own worker (if any) refuses the loopback target by default
        assert receiver.received == []


async def test_a_chachaml_mcp_process_delivers_the_queue(
    store: ServerStore, store_url: str, receiver: Receiver
) -> None:
    await raw_rule(store, receiver.url)
    event = await fire(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHACHAML_", "CHACHA_"))}
    env["CHACHAML_WEBHOOK_ALLOW_PRIVATE"] = "true"
    chachaml = str(Path(sys.executable).with_name("chachaml"))
    process = subprocess.Popen(
        [chachaml, "mcp", "--store", store_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        await await_for(lambda: delivered(store), 30)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the client hangs up: the server exits
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
    (hit,) = receiver.received
    assert event.run_id is not None and event.run_id in hit.json["text"]
    assert (await history(store)).delivery == "delivered"


async def test_a_chachaml_serve_process_delivers_the_queue(
    store: ServerStore,
    store_url: str,
    receiver: Receiver,
    tmp_path: Path,
    server_factory: ServerFactory,
) -> None:
    from tests.support.serve_proc import ServeProcess

    await raw_rule(store, receiver.url)
    event = await fire(store)
    env = {"CHACHAML_WEBHOOK_ALLOW_PRIVATE": "true"}
    server = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    server.start()
    try:
        await await_for(lambda: delivered(store), 30)
    finally:
        server.stop()
    (hit,) = receiver.received
    assert event.run_id is not None and event.run_id in hit.json["text"]
