"""Experiments: created on first use by name, never renamed or deleted."""

from __future__ import annotations

import time
from collections.abc import Sequence

from chachaml.errors import NotFound
from chachaml.records.events import ExperimentCreated
from chachaml.records.runs import Experiment, to_datetime
from chachaml.store.sql.database import Database, Row, Tx
from chachaml.store.sql.events import emit
from chachaml.store.sql.rows import marks

EXPERIMENT_SELECT = """
    SELECT e.id, e.name, e.description, e.owner, e.created_at,
           (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.archived = 0)
             AS run_count,
           (SELECT max(coalesce(r.ended_at, r.heartbeat_at)) FROM runs r
             WHERE r.experiment_id = e.id AND r.archived = 0) AS last_activity
    FROM experiments e
"""


def experiment_from_row(row: Row) -> Experiment:
    """An experiment from a row of ``EXPERIMENT_SELECT``."""
    return Experiment(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        owner=row["owner"],
        created_at=to_datetime(row["created_at"]),
        run_count=row["run_count"] or 0,
        last_activity=to_datetime(row["last_activity"]),
    )


class Experiments:
    """Experiments, and a cache of their ids and names for run listings.

    An experiment is never renamed or deleted, so the cache never goes stale: runs are
    selected from their own table alone and named from it, which spares PostgreSQL planning
    a join and a subquery on every listing (half its planning time for ``best_run``).
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._names: dict[int, str] = {}
        self._ids: dict[str, int] = {}

    @staticmethod
    async def ensure(db: Tx, name: str) -> int:
        """The id of the experiment ``name``, created if needed, inside a write."""
        # look first: an INSERT that conflicts would still use up an id from the sequence
        found = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (name,))
        if not found:
            now = time.time()
            if await db.execute(
                "INSERT INTO experiments (name, created_at) VALUES (?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, now),
            ):
                await emit(db, ExperimentCreated(name=name), at=now)
            found = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (name,))
        return int(found[0]["id"])

    async def id_of(self, db: Tx, name: str) -> int | None:
        """An experiment's id by name (cached); ``None`` if there is no such experiment."""
        found = self._ids.get(name)
        if found is None:
            ids = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (name,))
            if not ids:
                return None
            found = self._ids[name] = int(ids[0]["id"])
            self._names[found] = name
        return found

    async def names(self, db: Tx, ids: Sequence[int]) -> dict[int, str]:
        """Every experiment name by id, the cache filled with those of ``ids`` first."""
        missing = list(set(ids) - self._names.keys())
        if missing:
            sql = f"SELECT id, name FROM experiments WHERE id IN ({marks(missing)})"
            self._names.update(await db.fetchall(sql, missing))  # (id, name) pairs
        return self._names

    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create or update an experiment (description and owner, when given)."""

        async def body(db: Tx) -> None:
            await self.ensure(db, name)
            if description is not None:
                await db.execute(
                    "UPDATE experiments SET description = ? WHERE name = ?", (description, name)
                )
            if owner is not None:
                await db.execute("UPDATE experiments SET owner = ? WHERE name = ?", (owner, name))

        await self._db.transact(body)
        return await self.get_experiment(name)

    async def get_experiment(self, name: str) -> Experiment:
        """One experiment by name."""
        found = await self._db.query(
            lambda db: db.fetchall(EXPERIMENT_SELECT + " WHERE e.name = ?", (name,))
        )
        if not found:
            raise NotFound(f"experiment {name!r} not found")
        return experiment_from_row(found[0])

    async def list_experiments(self) -> list[Experiment]:
        """All experiments, most recently active first."""
        found = await self._db.query(lambda db: db.fetchall(EXPERIMENT_SELECT))
        exps = [experiment_from_row(r) for r in found]
        return sorted(exps, key=lambda e: e.last_activity or e.created_at, reverse=True)
