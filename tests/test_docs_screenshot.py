"""The README's web UI pictures: kept in ``docs/``, referenced, and remade by a script that works.

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
from PIL import Image  # installed with matplotlib, a test dependency

from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "screenshot_ui.py"
SHOTS = ("ui-runs.png", "ui-run.png")
MAX_BYTES = 300 * 1024


def check_picture(path: Path) -> None:
    """A PNG of a page: the PNG signature, a screen's width, some height, many colours."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert len(data) < MAX_BYTES, f"{path.name} is {len(data)} bytes"
    with Image.open(path) as image:
        width, height = image.size
        assert width == 1280 and 600 <= height <= 4000, (path.name, image.size)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # a blank or one-colour page has a handful of colours; text, badges and charts bring many
    assert colours is None or len(colours) > 50, f"{path.name} looks blank"


def test_the_readme_shows_the_kept_screenshots() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in SHOTS:
        assert f"(docs/{name})" in readme, name
        check_picture(ROOT / "docs" / name)
    assert "scripts/screenshot_ui.py" in readme


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
