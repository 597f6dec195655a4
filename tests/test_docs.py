"""The README's promises: its example runs, its commands are the ones CI uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


SERVER_EXAMPLE = "# Against a running server"  # first line of examples that need one


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_python_examples_run(tmp_path: Path) -> None:
    # later blocks build on earlier ones; tests/test_http_examples.py runs the server ones
    blocks = [b for b in code_blocks("python") if not b.startswith(SERVER_EXAMPLE)]
    example = "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "0.9" in result.stdout and "{'epochs': 3, 'lr': 0.01}" in result.stdout
    assert "[64, 32]" in result.stdout
    assert (tmp_path / "chachaml.db").exists()  # the embedded default store


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    run_cmd, test_cmd = (block.strip() for block in code_blocks("bash")[:2])
    assert run_cmd == "pip install . && chachaml demo"
    assert "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_every_public_name_is_documented() -> None:
    import chachaml

    undocumented = [
        name
        for name in chachaml.__all__
        if name[0].islower()
        and name not in {"default_client"}
        and f"`{name}" not in README
        and f"{name}(" not in README
        and f" {name}," not in README
    ]
    assert undocumented == []


def test_every_mcp_tool_is_documented() -> None:
    from chachaml.tools.catalogue import CATALOGUE

    assert [spec.name for spec in CATALOGUE if f"`{spec.name}`" not in README] == []
