"""The seam between the shared SQL and each database driver.

A backend provides a :class:`Database`: a read (``query``) and one write transaction
(``transact``), each running a body against a :class:`Tx`. The repositories of this package
are written once against it, with ``?`` placeholders and SQL that SQLite and PostgreSQL both
accept. Rows are read by column name (``row["id"]``): ``sqlite3.Row`` and ``asyncpg.Record``
both support it, so a row never depends on the order of a select list written elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")

Dialect = Literal["sqlite", "postgresql"]


# A result row: ``sqlite3.Row`` or ``asyncpg.Record``. Read columns by name (``row["id"]``);
# unpack one only where its select list is written in the same statement.
Row = Any


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
        """Bulk-insert rows (PostgreSQL uses COPY): the seam for seeding and copying."""
        ...

    def mark_events(self) -> bool:
        """Note that this transaction writes events (readers are woken once it commits).

        ``False``: the database keeps no events (a benchmark's baseline), write none.
        """
        ...


class CommitSignal:
    """Callbacks run after each commit of a transaction that wrote events, in this process.

    A callback may run in any thread (SQLite commits in a worker thread) and must only hand
    the news on (``loop.call_soon_threadsafe``), never block.
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` after each such commit; returns what removes it again."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def fire(self) -> None:
        """Run every callback (after a commit)."""
        for callback in list(self._callbacks):
            callback()


class Database(Protocol):
    """The few primitives a backend provides; every repository is written against them.

    ``transact`` runs its body in one write transaction, serialised (SQLite) or isolated and
    retried (PostgreSQL) so concurrent writers never lose each other's data; a body may run
    more than once and must do nothing but database work. ``query`` runs a body that only
    reads, in one round trip to the backend where it can. Driver errors that make the
    database unusable are raised as ``StoreUnavailable``.
    """

    dialect: Dialect
    url: str
    keep_events: bool  # False only for a benchmark's baseline: the outbox stays empty
    committed_events: CommitSignal  # fired after each commit that wrote events
    event_poll_seconds: float  # how often event readers poll anyway

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` in one write transaction (retried by the backend when busy)."""
        ...

    async def query(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body``, which only reads, on a connection of the backend's read pool."""
        ...

    async def close(self) -> None:
        """Release every connection."""
        ...

    async def change_marker(self) -> str | None:
        """A token that changes once any connection of any process has committed a write.

        Equal tokens read at two moments mean no commit came between them; ``None`` when
        the backend cannot tell.
        """
        ...

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (any thread) whenever events may have been committed; until cancelled.

        After this process's commits, and on PostgreSQL after any (LISTEN). Readers also poll
        every ``event_poll_seconds`` for what this does not hear.
        """
        ...


def columns(rows: Sequence[Row]) -> dict[str, int]:
    """Each column's position in rows of one statement, looked up by name once for them all.

    ``row[col["id"]]`` costs a dict lookup and an index, where ``row["id"]`` searches the
    column names on every call (``sqlite3.Row`` compares them case-insensitively): in a
    listing of wide rows that search was a tenth of ``query_runs``.
    """
    return {name: i for i, name in enumerate(rows[0].keys())} if rows else {}


async def fetch(database: Database, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    """The rows of one query."""
    return await database.query(lambda db: db.fetchall(sql, params))


_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$1, $2, ...`` (our SQL has no ``?`` in literals)."""
    counter = iter(range(1, 1_000_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
