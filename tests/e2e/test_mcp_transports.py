"""Every behaviour of :mod:`tests.server.mcp.test_server` again, over the real transports.

One connection per transport runs them all in turn: a ``chachaml mcp`` subprocess over stdio
and ``chachaml serve`` over streamable HTTP, each over its own freshly seeded store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.server.mcp.test_server import BEHAVIOURS
from tests.support.mcp_seed import CHACHAML, seeded_store, serving

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
