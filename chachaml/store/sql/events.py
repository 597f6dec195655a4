"""Events: the outbox. Each write emits its events inside its own transaction; readers page.

:func:`emit` is called by every repository inside the transaction of the change (so a
rolled-back change leaves no event, and a committed one always has its event); the row's
``seq`` is the event's id. The experiment of an event about a run is looked up by the insert
itself, so emitting costs one statement. On PostgreSQL, triggers of the events table keep
ids in commit order and ``NOTIFY chachaml_events`` (migration 16); in-process listeners hear
of each commit through the database's :class:`~chachaml.store.sql.database.CommitSignal`.
"""

from __future__ import annotations

import json
import time

from chachaml.records.events import Event, EventData
from chachaml.records.runs import to_datetime
from chachaml.store.sql.database import Database, Row, Tx

INSERT = (
    "INSERT INTO events (type, time, subject, run_id, model, data, experiment)"
    " VALUES (?, ?, ?, ?, ?, ?, coalesce(?, (SELECT e.name FROM runs r"
    " JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?)))"
)
SELECT = "SELECT seq, type, time, subject, experiment, run_id, model, data FROM events"


async def emit(db: Tx, *events: EventData, at: float | None = None) -> None:
    """Write ``events`` in the transaction ``db`` (at ``at``, epoch seconds; default now)."""
    if not events or not db.mark_events():
        return
    now = time.time() if at is None else at
    rows = [
        (e.type, now, e.subject(), e.run(), e.model(), e.model_dump_json(), e.experiment(),
         e.run())
        for e in events
    ]  # fmt: skip
    if len(rows) == 1:
        await db.execute(INSERT, rows[0])
    else:
        await db.executemany(INSERT, rows)


def event_from_row(row: Row) -> Event:
    """An event from a row of ``SELECT``."""
    return Event(
        id=str(row["seq"]),
        type=row["type"],
        time=to_datetime(row["time"]),
        subject=row["subject"],
        data=json.loads(row["data"]),
        experiment=row["experiment"],
        runid=row["run_id"],
        model=row["model"],
    )


class Events:
    """Reading the outbox in order, and pruning it."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def read_events(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events with ids above ``after``, in id order."""
        rows = await self._db.query(
            lambda db: db.fetchall(SELECT + " WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        )
        return [event_from_row(r) for r in rows]

    async def last_event_id(self) -> int:
        """The id of the newest event kept (0 when there is none)."""
        rows = await self._db.query(
            lambda db: db.fetchall("SELECT coalesce(max(seq), 0) AS seq FROM events")
        )
        return int(rows[0]["seq"])

    async def prune_events(self, before: float) -> int:
        """Delete events older than ``before`` (epoch seconds); returns how many."""
        return await self._db.transact(
            lambda db: db.execute("DELETE FROM events WHERE time < ?", (before,))
        )
