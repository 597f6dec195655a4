"""Numbered schema migrations, one module per SQL dialect, applied by one runner.

Each dialect's ``MIGRATIONS`` is a tuple of :class:`Migration` (append new ones; never edit
one that has shipped); :func:`chachaml.store.migrations.runner.migrate` applies the pending
ones inside the write transaction it is given and records each in ``schema_version``. A step
is SQL, or a Python function over the transaction for what SQL cannot compute (such as
decoding packed chunks to fill a new column, :mod:`chachaml.store.migrations.metric_chunks`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chachaml.store.sql.database import Tx

Step = str | Callable[[Tx], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    """One schema step: applied in order of ``version``, recorded in ``schema_version``."""

    version: int
    name: str
    statements: tuple[Step, ...]
