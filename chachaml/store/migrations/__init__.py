"""Numbered schema migrations, one module per SQL dialect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: applied in order of ``version``, recorded in ``schema_version``."""

    version: int
    name: str
    statements: tuple[str, ...]
