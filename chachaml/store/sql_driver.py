"""The seam between the shared SQL code and each database driver.

The store logic (:mod:`chachaml.store.sql_store`, :mod:`chachaml.store.sql_registry`) is
written once against :class:`Tx`, with ``?`` placeholders and SQL that SQLite and PostgreSQL
both accept. Each backend adapts its driver to :class:`Tx` and owns connection handling,
transactions and migrations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

Row = Sequence[Any]


class IntegrityViolation(Exception):
    """A unique or foreign-key constraint refused a write (driver errors are translated)."""


class Tx(Protocol):
    """One connection inside a transaction (writes) or a snapshot (reads).

    ``sql`` uses ``?`` placeholders. Constraint failures raise :class:`IntegrityViolation`.
    """

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter row."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query and return every row."""
        ...

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Bulk-insert rows (PostgreSQL uses COPY)."""
        ...


_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$1, $2, ...`` (our SQL has no ``?`` in literals)."""
    counter = iter(range(1, 1_000_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
