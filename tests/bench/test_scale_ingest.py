"""``bench.scale_ingest`` at a tiny size: real writer processes on a real PostgreSQL schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import scale_ingest
from bench.runner import Context
from bench.seed import Catalogue

pytestmark = pytest.mark.postgres


def test_many_writers_are_measured_and_every_point_is_read_back(tmp_path: Path) -> None:
    context = Context(tmp_path, Catalogue(tmp_path))
    figures = scale_ingest.measure(2, 1_000, context)
    loop, packed = figures
    assert loop.target is scale_ingest.TARGET and loop.met is (loop.value >= 2_000_000)
    assert all(f.value > 0 and f.reference and f.reference > 0 for f in figures)
    assert packed.target is None and packed.reference_name == "1 writer"
    assert any("every step of every writer read back once" in n for n in context.notes)
