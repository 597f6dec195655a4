"""The README's web UI pictures: kept in ``docs/``, referenced, and real pictures of pages.

:mod:`tests.e2e.test_readme_screenshots` runs ``scripts/screenshot_ui.py``, which remakes them.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.screenshots import SHOTS, check_picture

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_shows_the_kept_screenshots() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in SHOTS:
        assert f"(docs/{name})" in readme, name
        check_picture(ROOT / "docs" / name)
    assert "scripts/screenshot_ui.py" in readme
