"""One table of environment variables: what the code reads, what settings declares and what
the README shows are the same."""

from __future__ import annotations

import re
from pathlib import Path

from chachaml.settings import ENVIRONMENT, environment_table
from chachaml.tools.catalogue import OPT_IN_TOOLSETS

ROOT = Path(__file__).resolve().parent.parent
# the chachaml variables and the provider ones chat reads (AWS_* fall back, documented beside)
NAME = re.compile(r"\b(?:CHACHAML|CHACHA|ANTHROPIC|OPENAI)_[A-Z0-9_]*[A-Z0-9]\b")


def _declared() -> set[str]:
    return {n for var in ENVIRONMENT for n in var.names}


def test_every_variable_the_code_names_is_declared_and_every_declared_one_is_read() -> None:
    named = {
        match
        for path in (ROOT / "chachaml").rglob("*.py")
        for match in NAME.findall(path.read_text())
    }
    named -= {"CHACHAML_S3", "CHACHAML_ALERT"}  # prefixes in prose ("CHACHAML_S3_*")
    assert named == _declared()


def test_the_readme_table_is_the_declared_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- environment:.*?-->\n(.*?)\n<!-- /environment -->", readme, re.S)
    assert block is not None, "README lacks the generated environment table"
    assert block.group(1) == environment_table()
    first_cells = [line.split("|")[1] for line in readme.splitlines() if line.startswith("| ")]
    for name in _declared():  # and no second, drifting table elsewhere
        assert sum(f"`{name}`" in cell for cell in first_cells) == 1, name


def test_the_toolsets_variable_names_every_opt_in_toolset() -> None:
    (toolsets,) = [var for var in ENVIRONMENT if var.names == ("CHACHAML_MCP_TOOLSETS",)]
    assert f"`{','.join(OPT_IN_TOOLSETS)}`" in toolsets.meaning
