"""The README's web UI pictures are remade by a script that works.

``scripts/screenshot_ui.py`` is run for real (a server, its write API, Debian's Chromium) into a
temporary folder; each PNG it writes must be a real picture of a page, not a blank one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.screenshots import SHOTS, check_picture
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshot_ui.py"


@pytest.mark.slow
def test_the_screenshot_script_writes_real_pictures_of_the_pages(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        unavailable("Debian's chromium is not installed at /usr/bin/chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Playwright for Python is not installed")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}  # this checkout's chachaml, whatever is installed
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(SHOTS)
    for name in SHOTS:
        assert re.search(rf"{re.escape(str(tmp_path / name))} \(\d+ KB\)", done.stdout)
        check_picture(tmp_path / name)
