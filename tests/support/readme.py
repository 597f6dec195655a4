"""The README and its fenced code blocks, for the tests of its promises and of its examples."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SERVER_EXAMPLE = "# Against a running server"  # first line of examples that need one
CONSUMER_EXAMPLE = "# Consumer of "  # broker consumers: they run until stopped
CLUSTER_EXAMPLE = "# On a Dask cluster"  # needs PostgreSQL and a cluster: test_executors.py


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
