"""``chachaml mcp`` / ``serve`` argument handling that needs no server running."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from chachaml.cli import main


def test_an_unknown_toolset_is_refused_before_stdio_is_claimed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin, stdout = sys.stdin, sys.stdout
    code = main(["--store", f"sqlite:///{tmp_path / 'x.db'}", "mcp", "--toolsets", "nope"])
    gc.collect()  # an unclosed stdio pipe would surface here as a ResourceWarning (an error)
    assert code == 2
    assert "unknown toolset 'nope'; choose from metrics" in capsys.readouterr().err
    assert (sys.stdin, sys.stdout) == (stdin, stdout)
    assert not (tmp_path / "x.db").exists()
