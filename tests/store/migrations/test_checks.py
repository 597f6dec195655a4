"""Migration 19 on each backend: runs and pipelines accept ``stopped``, and a database from an
earlier version keeps every row (SQLite widens the CHECK in place, no table rebuild)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chachaml.store.migrations.checks import widen_check
from chachaml.store.migrations.runner import migrate
from chachaml.store.sql.database import Database, IntegrityViolation, Tx
from chachaml.store.sql.store import SQLStore
from chachaml.store.sqlite import SQLiteDatabase

pytestmark = pytest.mark.anyio
RUN = "c" * 32


async def store_a_run(db: Tx) -> None:
    """A run with a param and a pipeline on it, as version 18 stored them."""
    now = time.time()
    await db.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?)", ("e", now))
    await db.execute(
        "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at,"
        " heartbeat_at, heartbeat_timeout)"
        " SELECT ?, id, ?, 'running', ?, ?, ?, ? FROM experiments WHERE name = ?",
        (RUN, "old", "ana", now, now, 60.0, "e"),
    )
    await db.execute("INSERT INTO params (run_id, key, value) VALUES (?, 'lr', '0.1')", (RUN,))
    await db.execute(
        "INSERT INTO pipelines (id, name, run_id, status, created_by, started_at, max_parallel)"
        " VALUES ('p1', 'etl', ?, 'running', 'ana', ?, 1)",
        (RUN, now),
    )


async def test_runs_and_pipelines_accept_stopped_after_the_migration_and_keep_their_rows(
    database: Database,
) -> None:
    await database.transact(lambda db: migrate(db, database.dialect, up_to=18))
    await database.transact(store_a_run)
    await database.transact(lambda db: migrate(db, database.dialect))

    async def stop(db: Tx) -> None:
        await db.execute("UPDATE runs SET status = 'stopped' WHERE id = ?", (RUN,))
        await db.execute("UPDATE pipelines SET status = 'stopped' WHERE id = 'p1'")

    await database.transact(stop)  # another connection than the migration's reads the new schema
    run = await SQLStore(database).get_run(RUN)
    assert (run.status, run.params, run.stop_request) == ("stopped", {"lr": 0.1}, None)
    assert (await SQLStore(database).get_pipeline("p1")).status == "stopped"
    with pytest.raises(IntegrityViolation):
        await database.transact(
            lambda db: db.execute("UPDATE runs SET status = 'paused' WHERE id = ?", (RUN,))
        )


async def test_widening_a_check_the_table_does_not_have_is_refused(tmp_path: Path) -> None:
    database = await SQLiteDatabase.open(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await database.transact(lambda db: migrate(db, "sqlite"))
        step = widen_check("runs", "CHECK (status IN ('running'))", "CHECK (1)")
        with pytest.raises(RuntimeError, match="has no"):
            await database.transact(step)
    finally:
        await database.close()
