"""What a fresh interpreter loads: importing chachaml stays light, the S3 library and the MCP
SDK load only when used, and a missing extra is one line naming the install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_import_does_not_pull_in_servers_or_provider_sdks() -> None:
    code = (
        "import sys, json, chachaml; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'mcp', 'starlette', 'uvicorn', 'anthropic', 'openai', 'numpy', 'httpx', 'asyncpg'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_importing_chachaml_loads_neither_mcp_nor_starlette() -> None:
    code = (
        "import sys, chachaml, chachaml.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " {'mcp', 'mcp_types', 'starlette', 'uvicorn'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_s3_library_loads_only_for_an_s3_root() -> None:
    code = (
        "import sys, chachaml; from chachaml.store.artifacts import open_artifact_store; "
        "open_artifact_store('./artifacts'); print('obstore' in sys.modules); "
        "open_artifact_store('s3://bucket/prefix'); print('obstore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def _without(modules: list[str], code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where ``modules`` cannot be imported."""
    block = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {block}\n{code}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"},
    )


@pytest.mark.parametrize(
    ("modules", "code", "expected"),
    [
        (
            ["anthropic"],
            "from chachaml.cli import main; sys.exit(main(['chat', 'hi', '--store',"
            " 'sqlite:///x.db']))",
            "chachaml: chat with anthropic needs anthropic, which is not installed:"
            " pip install 'chachaml[chat]'",
        ),
        (
            ["openai"],
            "from chachaml.cli import main; sys.exit(main(['chat', 'hi', '--provider', 'openai',"
            " '--store', 'sqlite:///x.db']))",
            "pip install 'chachaml[chat]'",
        ),
        (
            ["sklearn"],
            "import chachaml.client.integrations.sklearn",
            "chachaml's scikit-learn integration needs sklearn, which is not installed:"
            " pip install 'chachaml[sklearn]'",
        ),
        (
            ["mlflow"],
            "from chachaml.cli import main; sys.exit(main(['import', 'mlflow', '--from',"
            " 'sqlite:///mlflow.db', '--store', 'sqlite:///x.db']))",
            "chachaml: chachaml import mlflow needs mlflow, which is not installed:"
            " pip install 'chachaml[mlflow]'",
        ),
        (
            ["matplotlib"],
            "from chachaml.server.mcp.metrics import _plot_png; _plot_png(None, False)",
            "plot_metrics needs matplotlib, which is not installed: pip install 'chachaml[plot]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_install(
    modules: list[str], code: str, expected: str, tmp_path: Path
) -> None:
    done = _without(modules, code, tmp_path)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
    if "cli import main" in code:  # the command line prints the line alone, no traceback
        assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
