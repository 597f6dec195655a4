"""A client nobody here wrote: the MCP Inspector CLI drives ``chachaml mcp`` and ``/mcp``."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.mcp_seed import CHACHAML, IRIS, NEW, seeded_store, serving
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture(scope="module")
def inspector() -> str:
    path = Path(os.environ.get("MCP_INSPECTOR_BIN") or DEFAULT_BIN)
    if not path.exists():
        unavailable(
            f"MCP Inspector not found at {path}; install it with"
            " npm install --no-save --prefix .ci/node @modelcontextprotocol/inspector"
        )
    return str(path)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    import anyio

    path = tmp_path_factory.mktemp("inspector")
    return anyio.run(seeded_store, path), path / "artifacts"


@pytest.fixture(scope="module")
def http_url(seeded: tuple[str, Path]) -> Iterator[str]:
    with serving(*seeded) as url:
        yield url


def inspect_json(inspector: str, target: list[str], *method: str) -> Any:
    result = subprocess.run(
        [inspector, "--cli", *target, "--method", *method],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stdio(seeded: tuple[str, Path]) -> list[str]:
    url, artifacts = seeded
    return [CHACHAML, "mcp", "--store", url, "--artifacts", str(artifacts)]


def test_inspector_lists_the_16_tools_over_stdio(inspector: str, seeded: tuple[str, Path]) -> None:
    listing = inspect_json(inspector, stdio(seeded), "tools/list")
    assert len(listing["tools"]) == 16
    best = next(t for t in listing["tools"] if t["name"] == "best_run")
    assert best["annotations"]["readOnlyHint"] is True
    assert best["inputSchema"]["required"] == ["metric"]


def test_inspector_calls_best_run_over_stdio(inspector: str, seeded: tuple[str, Path]) -> None:
    answer = inspect_json(
        inspector,
        stdio(seeded),
        "tools/call",
        "--tool-name",
        "best_run",
        "--tool-arg",
        "metric=acc",
    )
    assert answer["isError"] is False
    assert answer["structuredContent"]["best"]["run"]["id"] == IRIS
    assert IRIS in answer["content"][0]["text"]


def test_inspector_lists_and_calls_tools_over_http(inspector: str, http_url: str) -> None:
    listing = inspect_json(inspector, [http_url], "tools/list")
    assert sorted(t["name"] for t in listing["tools"])[:3] == [
        "add_tag",
        "best_run",
        "compare_runs",
    ]
    assert len(listing["tools"]) == 16
    answer = inspect_json(
        inspector,
        [http_url],
        "tools/call",
        "--tool-name",
        "list_runs",
        "--tool-arg",
        "status=failed",
    )
    assert [r["id"] for r in answer["structuredContent"]["runs"]] == [NEW]


def test_inspector_sees_a_tool_error_for_an_unknown_run(
    inspector: str, seeded: tuple[str, Path]
) -> None:
    answer = inspect_json(
        inspector,
        stdio(seeded),
        "tools/call",
        "--tool-name",
        "get_run",
        "--tool-arg",
        "run_id=nope",
    )
    assert answer["isError"] is True
    assert "run 'nope' not found" in answer["content"][0]["text"]
