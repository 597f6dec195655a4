"""``chachaml mcp`` answers ``initialize`` before loading the SDK, exactly as the SDK would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import chachaml
from chachaml.server.mcp import stdio as mcp_stdio
from tests.support.mcp_seed import CHACHAML


def exchange(tmp_path: Path, *messages: dict[str, object]) -> list[dict[str, object]]:
    wire = "".join(json.dumps(m) + "\n" for m in messages)
    out = subprocess.run(
        [CHACHAML, "mcp", "--store", f"sqlite:///{tmp_path / 'x.db'}"],
        input=wire,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def initialize(version: str) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }


def test_the_handshake_is_answered_once_and_the_session_works(tmp_path: Path) -> None:
    replies = exchange(
        tmp_path,
        initialize("2025-06-18"),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 8, "method": "tools/list"},
    )
    assert [r["id"] for r in replies] == [7, 8]  # the SDK's own initialize reply is dropped
    assert replies[0]["result"]["protocolVersion"] == "2025-06-18"  # type: ignore[index]
    assert len(replies[1]["result"]["tools"]) == 16  # type: ignore[index]


def test_the_early_answer_is_what_the_sdk_itself_sends(tmp_path: Path) -> None:
    # a version outside the handshake list is answered by the SDK: compare with ours
    replies = exchange(tmp_path, initialize("2099-01-01"))
    assert [r["id"] for r in replies] == [7]
    store = f"sqlite:///{tmp_path / 'x.db'}"
    expected = mcp_stdio.initialize_result("2025-11-25", chachaml.__version__, store)
    assert replies[0]["result"] == expected


def test_mcp_command_rejects_an_unknown_toolset_with_the_choices(tmp_path: Path) -> None:
    result = subprocess.run(
        [CHACHAML, "mcp", "--store", f"sqlite:///{tmp_path / 'x.db'}", "--toolsets", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown toolset 'nope'; choose from metrics, artifacts, registry" in result.stderr
    assert result.stdout == ""
