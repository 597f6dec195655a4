"""Numbered schema migrations, one module per SQL dialect, applied by one runner.

Each dialect's ``MIGRATIONS`` is a tuple of :class:`Migration` (append new ones; never edit
one that has shipped); :func:`chachaml.store.migrations.runner.migrate` applies the pending
ones inside the write transaction it is given and records each in ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: applied in order of ``version``, recorded in ``schema_version``."""

    version: int
    name: str
    statements: tuple[str, ...]
