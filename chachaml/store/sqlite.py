"""The SQLite backend: one write connection with ``BEGIN IMMEDIATE``, a small pool of readers.

WAL journal, a busy timeout and foreign keys are set on every connection; migrations are
applied on open inside a write transaction so concurrent openers never race. Several
processes may share one database file: writes wait for the lock (and are retried), reads
never block writes. This module is the :class:`~chachaml.store.sql.database.Database` seam
for SQLite; the SQL itself lives in the repositories of :mod:`chachaml.store.sql`.

A transaction costs one thread hand-off, not one per statement: every connection is a plain
``sqlite3`` connection, and the body of a write transaction or of a read (a coroutine that
only awaits the connection's own methods, which never suspend) is driven to completion in a
worker thread. A listing that needs three queries thus costs one hop to a thread, not
five as with a connection that hands off each statement (aiosqlite) plus BEGIN and COMMIT.

Reads go one better: most answer in tens of microseconds, less than the hop to a thread and
back (100-250 us), so a read first runs right on the event loop, on a connection of its own
that never waits for a lock. A progress handler interrupts a read still running after
``INLINE_READ_SECONDS``, and a read interrupted so (or finding the file busy) runs again on a
reader in a worker thread: a heavy query never holds the event loop for longer than that.
(Python work in a thread would hold the loop anyway, through the GIL; only SQLite's own time
is worth moving off it.)
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

from chachaml.errors import InvalidInput, StoreUnavailable
from chachaml.store.migrations.runner import migrate
from chachaml.store.sql.database import CommitSignal, Dialect, IntegrityViolation, Row, Tx
from chachaml.store.sql.store import SQLStore

T = TypeVar("T")

BUSY_TIMEOUT_MS = 60_000
WRITE_RETRIES = 8
READERS = 2
INLINE_READ_SECONDS = 0.002
EVENT_POLL_SECONDS = 0.025  # how often event readers look for other processes' events
PROGRESS_EVERY = 1000  # SQLite VM instructions between two looks at the inline read's clock


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise InvalidInput(f"not a SQLite URL (expected sqlite:///path): {url!r}")
    path = url[len("sqlite:///") :]
    if not path:
        raise InvalidInput(f"SQLite URL has no path: {url!r}")
    return path


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


class SyncSQLiteTx:
    """:class:`~chachaml.store.sql.database.Tx` over a plain ``sqlite3`` connection.

    Its coroutines never suspend, so a body using only them runs to completion in one
    ``send`` (see :func:`run_to_completion`).
    """

    def __init__(self, db: sqlite3.Connection, keep_events: bool = False) -> None:
        self._db = db
        self._keep_events = keep_events
        self.wrote_events = False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the rows changed."""
        try:
            return self._db.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement per row."""
        try:
            self._db.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query."""
        return self._db.execute(sql, params).fetchall()

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows with one prepared statement."""
        marks = ", ".join("?" * len(columns))
        await self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def mark_events(self) -> bool:
        """Note that this transaction writes events; ``False`` if the database keeps none."""
        self.wrote_events = self._keep_events
        return self._keep_events


def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Run an awaitable that never suspends, synchronously, and return its result."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    steps.close()
    raise RuntimeError("a SQLite transaction awaited something other than its connection")


def _connect(path: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection any one thread at a time may use, with the busy timeout and pragmas.

    Its rows are ``sqlite3.Row``: the repositories read columns by name.
    """
    db = sqlite3.connect(
        path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
    )
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def _connect_writer(path: str) -> sqlite3.Connection:
    db = _connect(path)
    for attempt in range(WRITE_RETRIES):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or attempt == WRITE_RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    return db


class _Deadline:
    """A progress handler that interrupts the statement running once ``at`` has passed."""

    def __init__(self) -> None:
        self.at = math.inf

    def __call__(self) -> bool:
        return time.perf_counter() > self.at


def _is_interrupted(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc)


class SQLiteDatabase:
    """The :class:`~chachaml.store.sql.database.Database` of one SQLite file."""

    dialect: Dialect = "sqlite"
    event_poll_seconds = EVENT_POLL_SECONDS

    def __init__(
        self,
        url: str,
        writer: sqlite3.Connection,
        readers: list[sqlite3.Connection],
        inline: sqlite3.Connection | None = None,
    ) -> None:
        self.url = url
        self.keep_events = True
        self.committed_events = CommitSignal()
        self._writer = writer
        self._write_lock = anyio.Lock()
        self._readers = readers
        self._reader_slots = anyio.Semaphore(max(len(readers), 1))
        self._free = list(readers)
        self._inline = inline
        self._deadline = _Deadline()
        if inline is not None:
            inline.set_progress_handler(self._deadline, PROGRESS_EVERY)

    @classmethod
    async def open(cls, url: str) -> SQLiteDatabase:
        """Connect and switch to WAL (no migration: see :meth:`SQLiteStore.open`)."""
        path = path_from_url(url)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = await anyio.to_thread.run_sync(_connect_writer, path)
            readers = (
                [await anyio.to_thread.run_sync(_connect, path) for _ in range(READERS)]
                if path != ":memory:"
                else []
            )
            inline = (
                await anyio.to_thread.run_sync(_connect, path, 0) if path != ":memory:" else None
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {url}: {exc}") from exc
        return cls(url, writer, readers, inline)

    async def close(self) -> None:
        """Close every connection."""
        for _ in self._readers:  # take every reader's slot: no read is running on one then
            await self._reader_slots.acquire()
        for db in self._readers:
            db.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for _ in self._readers:
            self._reader_slots.release()
        async with self._write_lock:
            await anyio.to_thread.run_sync(self._writer.close)

    async def change_marker(self) -> str | None:
        """``PRAGMA data_version`` of the reader on the event loop, which never writes.

        It changes whenever another connection, of this process (the writer) or any other,
        has committed to the file since the last time it was read; about 3 us. ``None`` for
        an in-memory database (no such reader).
        """
        if self._inline is None:
            return None
        try:
            (version,) = self._inline.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError:  # busy with a checkpoint's WAL reset: cannot tell
            return None
        return str(version)

    def _write_once(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """One transaction, run entirely in the calling (worker) thread."""
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            tx = SyncSQLiteTx(db, self.keep_events)
            result = run_to_completion(body(tx))
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk, an I/O error): a failing
            # ROLLBACK must not replace the error that says what happened
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        if tx.wrote_events:  # this process's readers hear of it now; others poll
            self.committed_events.fire()
        return result

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction, retrying when the file is busy."""
        async with self._write_lock:
            for attempt in range(WRITE_RETRIES):
                try:
                    return await anyio.to_thread.run_sync(self._write_once, body)
                except sqlite3.Error as exc:
                    if _is_locked(exc) and attempt < WRITE_RETRIES - 1:
                        await anyio.sleep(0.05 * 2**attempt)
                        continue
                    raise StoreUnavailable(f"SQLite write failed: {exc}") from exc
            raise AssertionError("unreachable")

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` after each commit of events by this process, until cancelled.

        Another process writing to the same file is not heard: readers poll for that
        (``EVENT_POLL_SECONDS``).
        """
        remove = self.committed_events.add(wake)
        try:
            await anyio.sleep_forever()
        finally:
            remove()

    @staticmethod
    def _read_once(db: sqlite3.Connection, body: Callable[[Tx], Awaitable[T]]) -> T:
        """One read, run entirely in the calling (worker) thread, in one snapshot."""
        db.execute("BEGIN")
        try:
            return run_to_completion(body(SyncSQLiteTx(db)))
        finally:
            db.execute("COMMIT")

    def _read_inline(self, db: sqlite3.Connection, body: Callable[[Tx], Awaitable[T]]) -> T:
        """One read on the calling thread, interrupted once its time budget has passed."""
        self._deadline.at = time.perf_counter() + INLINE_READ_SECONDS
        db.execute("BEGIN")
        try:
            return run_to_completion(body(SyncSQLiteTx(db)))
        finally:
            self._deadline.at = math.inf
            if db.in_transaction:
                db.execute("COMMIT")

    async def query(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` in one read transaction.

        On the event loop when it is quick (see the module's docstring), else on a free
        reader in one thread hop.
        """
        if self._inline is not None:  # never in use here: an inline read never suspends
            try:
                return self._read_inline(self._inline, body)
            except sqlite3.OperationalError as exc:
                if not (_is_interrupted(exc) or _is_locked(exc)):
                    raise
        async with self._reader_slots:
            if not self._free:  # an in-memory database has only the write connection
                async with self._write_lock:
                    return await anyio.to_thread.run_sync(self._read_once, self._writer, body)
            db = self._free.pop()
            try:
                return await anyio.to_thread.run_sync(self._read_once, db, body)
            finally:
                self._free.append(db)


class SQLiteStore(SQLStore):
    """A :class:`~chachaml.store.server_state.ServerStore` on one SQLite file.

    Open with :meth:`open`; the SQL is the shared repositories', over a :class:`SQLiteDatabase`.
    """

    database: SQLiteDatabase

    @classmethod
    async def open(cls, url: str) -> SQLiteStore:
        """Connect, switch to WAL, apply pending migrations and return the store."""
        database = await SQLiteDatabase.open(url)
        try:
            await database.transact(lambda db: migrate(db, "sqlite"))
        except BaseException:
            await database.close()
            raise
        return cls(database)
