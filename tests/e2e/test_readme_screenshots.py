"""The README's web UI pictures, and pictures of every page, are made by a script that works.

``scripts/screenshot_ui.py`` is run for real (a server, its write API, Debian's Chromium) into
temporary folders; each README PNG must be a real picture of a page, not a blank one, and every
page must be pictured at desktop and phone width.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support.browser import CHROMIUM
from tests.support.screenshots import SHOTS, check_picture
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshot_ui.py"


@pytest.mark.slow
def test_the_screenshot_script_writes_real_pictures_of_the_pages(tmp_path: Path) -> None:
    readme, pages = tmp_path / "readme", tmp_path / "pages"
    if not CHROMIUM.exists():
        unavailable(f"Debian's chromium-headless-shell is not installed at {CHROMIUM}")
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Playwright for Python is not installed")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}  # this checkout's chachaml, whatever is installed
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--out",
            str(readme),
            "--pages",
            str(pages),
            "--chromium",
            str(CHROMIUM),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in readme.iterdir())
    assert written == sorted(SHOTS)
    for name in SHOTS:
        assert re.search(rf"{re.escape(str(readme / name))} \(\d+ KB\)", done.stdout)
        check_picture(readme / name)
    names = {p.name for p in pages.iterdir()}
    for page in ("overview", "runs", "run", "model", "pipeline", "alerts", "not-found"):
        for screen, width in (("desktop", 1280), ("phone", 390)):
            assert f"{page}-{screen}.png" in names, (page, screen)
            with Image.open(pages / f"{page}-{screen}.png") as image:
                assert image.size[0] == width, (page, screen, image.size)
    assert len(names) >= 30
