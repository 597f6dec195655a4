"""The README's promises: its commands are the ones CI uses, every public name and tool is in it.

Its examples run in :mod:`tests.e2e.test_readme_examples`.
"""

from __future__ import annotations

from tests.support.readme import README, ROOT, code_blocks


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
