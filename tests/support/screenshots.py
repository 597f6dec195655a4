"""The README's web UI pictures: their names, and what makes a PNG a real picture of a page."""

from __future__ import annotations

from pathlib import Path

from PIL import Image  # installed with matplotlib, a test dependency

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
