"""The first hour with an MCP client, for real: ``chachaml mcp`` says when it serves a new store,
the printed stdio config starts a server an SDK client uses, and a team server's config carries
its token header.

The rest of the first hour runs in process in :mod:`tests.test_first_hour`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client as MCPClient

from chachaml.errors import InvalidInput
from chachaml.server.mcp import client_config as cc
from tests.server.mcp.test_server import text
from tests.support.fork_server import ServerFactory
from tests.support.mcp_seed import open_seeded

pytestmark = pytest.mark.anyio


def test_serving_a_new_store_says_so_on_stderr(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "chachaml.cli", "mcp", "--store", url],
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert f"{tmp_path / 'new.db'} does not exist yet; serving a new, empty store there" in (
        proc.stderr.decode()
    )


async def test_the_printed_stdio_config_starts_a_server_an_sdk_client_uses(
    tmp_path: Path,
) -> None:
    from mcp.client.stdio import StdioServerParameters

    async with open_seeded(tmp_path):
        pass  # seeds tmp_path/seeded.db; the configured server reads it
    seeded = next(tmp_path.glob("*.db"))
    out = subprocess.run(
        [cc.executable(), "mcp", "config", "--client", "claude-desktop", "--store",
         f"sqlite:///{seeded}"],
        capture_output=True, check=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ).stdout  # fmt: skip
    entry = json.loads(out)["mcpServers"]["chachaml"]
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env={"PYTHONPATH": os.pathsep.join(sys.path)},
        cwd="/",  # a client starts the server from its own folder: paths must not depend on it
    )
    async with MCPClient(params) as mcp:
        tools = await mcp.list_tools()
        assert len(tools.tools) == 16
        listing = await mcp.call_tool("list_runs", {"limit": 1})
        assert listing.structured_content is not None
        assert listing.structured_content["runs"], text(listing)


def test_mcp_config_for_a_team_server_carries_the_token_header(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    from tests.support.serve_proc import ServeProcess

    tokens = {"CHACHAML_TOKENS": "ana:tok-ana-1234"}
    db = f"sqlite:///{tmp_path / 'team.db'}"
    server = ServeProcess(db, tmp_path / "a", tokens, server_factory)
    server.start()
    try:
        assert cc.needs_token(cc.mcp_url(server.url))
        text = cc.http_config("vscode", cc.mcp_url(server.url), "tok-ana-1234")
        entry = json.loads(text)["servers"]["chachaml"]
        assert entry == {
            "type": "http",
            "url": f"{server.url}/mcp",
            "headers": {"Authorization": "Bearer tok-ana-1234"},
        }
        code = cc.http_config("claude-code", cc.mcp_url(server.url), "tok-ana-1234")
        assert shlex.split(code)[-1] == "--header=Authorization: Bearer tok-ana-1234"
    finally:
        server.stop()
    with pytest.raises(InvalidInput, match="no chachaml server answers"):
        cc.needs_token(cc.mcp_url(server.url))
