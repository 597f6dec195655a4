"""Every behaviour of :mod:`tests.server.mcp.test_server` again, over the real transports.

One connection per transport runs them all in turn: a ``chachaml mcp`` subprocess over stdio
and ``chachaml serve`` over streamable HTTP, each over its own freshly seeded store. Resource
subscriptions over stdio too (over HTTP: :mod:`tests.server.mcp.test_resource_updates`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from chachaml.store import open_store
from chachaml.store.codec import make_chunk
from tests.server.mcp.test_resource_updates import Updates
from tests.server.mcp.test_server import BEHAVIOURS
from tests.support.mcp_seed import CHACHAML, MID, seeded_store, serving

pytestmark = pytest.mark.anyio


async def test_every_behaviour_holds_over_a_stdio_subprocess(tmp_path: Path) -> None:
    url = await seeded_store(tmp_path)
    params = StdioServerParameters(
        command=CHACHAML,
        args=["mcp", "--store", url, "--artifacts", str(tmp_path / "artifacts")],
        env=dict(os.environ),  # the SDK passes a bare environment: keep PYTHONPATH and the rest
    )
    async with Client(params) as client:
        for behaviour in BEHAVIOURS:
            await behaviour(client)


async def test_every_behaviour_holds_over_streamable_http(tmp_path: Path) -> None:
    url = await seeded_store(tmp_path)
    with serving(url, tmp_path / "artifacts") as endpoint:
        async with Client(endpoint) as client:
            for behaviour in BEHAVIOURS:
                await behaviour(client)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_a_handshake_era_client_over_stdio_is_notified_of_another_process_writes(
    tmp_path: Path,
) -> None:
    url = await seeded_store(tmp_path)
    params = StdioServerParameters(
        command=CHACHAML,
        args=["mcp", "--store", url, "--artifacts", str(tmp_path / "artifacts")],
        env=dict(os.environ),
    )
    updates = Updates()
    store = await open_store(url)
    try:
        async with Client(params, mode="legacy", message_handler=updates) as client:
            resources = client.server_capabilities.resources
            assert resources is not None and resources.subscribe
            await client.subscribe_resource(f"chachaml://runs/{MID}")
            # this test's process writes to the file the server reads
            await store.log_metrics([make_chunk(MID, "loss", [(99, 0.01, 1.0)])])
            await updates.wait_for(f"chachaml://runs/{MID}")
    finally:
        await store.close()
