"""Runs: their creation and end, heartbeats, params, tags, notes, datasets, and cleanup.

Reading runs back (listings, ``best_run``, one run in full) is :mod:`run_queries`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from chachaml.errors import Conflict, NotFound
from chachaml.records.events import (
    RunEnded,
    RunKilled,
    RunNoted,
    RunStarted,
    RunTagged,
    StopRequested,
)
from chachaml.records.runs import Dataset, EndStatus, NewRun, ParamValue, StopRequest, to_datetime
from chachaml.store.sql.artifacts import unused_in
from chachaml.store.sql.database import Database, IntegrityViolation, Tx
from chachaml.store.sql.events import emit
from chachaml.store.sql.experiments import Experiments
from chachaml.store.sql.metrics import latest_metrics
from chachaml.store.sql.rows import (
    STOP_SELECT,
    decode_param,
    encode_param,
    in_batches,
    marks,
    require_run,
    stop_from_row,
)


class Runs:
    """Run writes and cleanup."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_run(self, run: NewRun) -> None:
        """Insert a new running run."""
        await self._db.transact(lambda db: self.insert_run(db, run))

    @staticmethod
    async def insert_run(db: Tx, run: NewRun) -> None:
        """Insert a new running run inside the caller's transaction (with its event)."""
        exp_id = await Experiments.ensure(db, run.experiment)
        if run.parent_id is not None:
            await require_run(db, run.parent_id)
        try:
            await db.execute(
                "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at,"
                " heartbeat_at, heartbeat_timeout, parent_id, environment)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    exp_id,
                    run.name,
                    run.created_by,
                    run.started_at,
                    run.started_at,
                    run.heartbeat_timeout,
                    run.parent_id,
                    json.dumps(run.environment, default=str),
                ),
            )
        except IntegrityViolation as exc:
            raise Conflict(f"run {run.id!r} already exists") from exc
        if run.tags:
            await db.executemany(
                "INSERT INTO tags (run_id, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)",
                [(run.id, k, v, run.created_by, run.started_at) for k, v in run.tags.items()],
            )
        started = RunStarted(run_id=run.id, name=run.name, created_by=run.created_by,
                             parent_id=run.parent_id, tags=dict(run.tags))  # fmt: skip
        await emit(db, started, at=run.started_at)

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> EndStatus:
        """Mark a running run as ended; returns the status stored.

        A run asked to stop that ends as completed is stored as ``stopped``.
        """
        return await self._db.transact(lambda db: self.end_run_in(db, run_id, status, error,
                                                                  ended_at))  # fmt: skip

    @staticmethod
    async def end_run_in(
        db: Tx, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> EndStatus:
        """:meth:`end_run` inside the caller's transaction."""
        found = await db.fetchall(
            "SELECT status, started_at, stop_requested_at FROM runs WHERE id = ?", (run_id,)
        )
        if not found:
            raise NotFound(f"run {run_id!r} not found")
        (row,) = found
        if row["status"] != "running":
            raise Conflict(f"run {run_id!r} has already ended ({row['status']})")
        stored: EndStatus = status
        if status == "completed" and row["stop_requested_at"] is not None:
            stored = "stopped"
        await db.execute(
            "UPDATE runs SET status = ?, error = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
            (stored, error, ended_at, ended_at, run_id),
        )
        metrics = (await latest_metrics(db, [run_id]))[run_id]
        duration = max(0.0, ended_at - row["started_at"])
        ended = RunEnded(run_id=run_id, status=stored, error=error, duration=duration,
                         metrics=metrics)  # fmt: skip
        await emit(db, ended, at=ended_at)
        return stored

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> list[StopRequest]:
        """Refresh the heartbeat of running runs; returns the stop requests pending for them.

        The reply to a heartbeat is how a training process hears that it was asked to stop,
        so the request reaches it within one heartbeat interval, with no channel of its own.
        """
        if not run_ids:
            return []

        async def body(db: Tx) -> list[StopRequest]:
            await db.executemany(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                [(at, rid) for rid in run_ids],
            )
            stops = []
            for batch in in_batches(list(run_ids)):
                stops += await db.fetchall(
                    f"{STOP_SELECT} WHERE id IN ({marks(batch)}) AND status = 'running'"
                    " AND stop_requested_at IS NOT NULL",
                    batch,
                )
            return [stop_from_row(r) for r in stops]

        return await self._db.transact(body)

    async def request_stop(
        self, run_id: str, user: str | None, reason: str | None, at: float
    ) -> StopRequest:
        """Record that ``user`` asked a running run (and its running children) to stop.

        Written with its ``run.stop_requested`` events in one transaction. Asking again
        keeps the first request (who asked first, and why) and writes nothing. A run that
        ended, or whose heartbeat went stale (nobody is there to hear it), is a ``Conflict``.
        Children (a pipeline's steps, a sweep's trials) are asked too, so each stops at its
        own next heartbeat.
        """

        async def body(db: Tx) -> StopRequest:
            found = await db.fetchall(
                "SELECT id, status, heartbeat_at, heartbeat_timeout, stop_requested_at,"
                " stop_requested_by, stop_reason FROM runs WHERE id = ?",
                (run_id,),
            )
            if not found:
                raise NotFound(f"run {run_id!r} not found")
            (row,) = found
            if row["status"] != "running":
                raise Conflict(
                    f"run {run_id!r} has already ended ({row['status']}); only a running run"
                    " can be asked to stop"
                )
            if row["stop_requested_at"] is not None:
                return stop_from_row(row)
            if row["heartbeat_at"] + row["heartbeat_timeout"] < at:
                raise Conflict(
                    f"run {run_id!r} reads killed: its last heartbeat was at"
                    f" {to_datetime(row['heartbeat_at']).isoformat()}, so no process is there"
                    " to hear a stop request"
                )
            ask = "UPDATE runs SET stop_requested_at = ?, stop_requested_by = ?, stop_reason = ?"
            await db.execute(ask + " WHERE id = ?", (at, user, reason, run_id))
            children = await db.fetchall(
                ask + " WHERE parent_id = ? AND status = 'running' AND stop_requested_at IS NULL"
                " RETURNING id",
                (at, user, reason, run_id),
            )
            await emit(
                db,
                StopRequested(run_id=run_id, reason=reason, user=user),
                *(StopRequested(run_id=c["id"], reason=reason, user=user, parent_id=run_id)
                  for c in children),
                at=at,
            )  # fmt: skip
            return StopRequest(
                run_id=run_id, user=user, reason=reason, requested_at=to_datetime(at)
            )

        return await self._db.transact(body)

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params, refusing to change an existing value."""
        encoded = {k: encode_param(v) for k, v in params.items()}

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            keys = list(encoded)
            existing = {
                r["key"]: r["value"]
                for r in await db.fetchall(
                    f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks(keys)})",
                    [run_id, *keys],
                )
            }
            for key, stored in existing.items():
                if stored != encoded[key]:
                    raise Conflict(
                        f"param {key!r} of run {run_id!r} is already {stored}; params are"
                        f" immutable, cannot change it to {encoded[key]}"
                    )
            await db.executemany(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in encoded.items() if k not in existing],
            )

        if encoded:
            await self._db.transact(body)

    async def set_tags(self, run_id: str, tags: Mapping[str, str], user: str | None = None) -> None:
        """Set tags, overwriting earlier values; who and when are kept beside each."""
        now = time.time()

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            await db.executemany(
                "INSERT INTO tags (run_id, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
                " set_by = excluded.set_by, set_at = excluded.set_at",
                [(run_id, k, v, user, now) for k, v in tags.items()],
            )
            await emit(db, RunTagged(run_id=run_id, tags=dict(tags), user=user), at=now)

        if tags:
            await self._db.transact(body)

    async def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag; ``NotFound`` naming it if the run has no such tag."""

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            if not await db.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key)):
                raise NotFound(f"run {run_id!r} has no tag {key!r}")
            await emit(db, RunTagged(run_id=run_id, removed=[key]))

        await self._db.transact(body)

    async def rename_run(self, run_id: str, name: str | None) -> None:
        """Give a run another name (``None``: unnamed)."""

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            await db.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

        await self._db.transact(body)

    async def set_archived(self, run_id: str, archived: bool) -> None:
        """Archive one run (any status) or bring it back.

        A run that a model version came from is never archived (a trigger keeps it): that is
        a ``Conflict`` here rather than a silent no-op.
        """

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            changed = await db.execute(
                "UPDATE runs SET archived = ? WHERE id = ? AND archived = ?",
                (int(archived), run_id, int(not archived)),
            )
            if not changed and archived:
                state = await db.fetchall("SELECT archived FROM runs WHERE id = ?", (run_id,))
                if not state[0]["archived"]:
                    raise Conflict(
                        f"run {run_id!r} cannot be deleted: a registered model version came from it"
                    )

        await self._db.transact(body)

    async def set_note(self, run_id: str, note: str, user: str | None = None) -> None:
        """Replace the run's note; who and when are kept beside it."""

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            now = time.time()
            await db.execute(
                "UPDATE runs SET note = ?, note_by = ?, note_at = ? WHERE id = ?",
                (note, user, now, run_id),
            )
            await emit(db, RunNoted(run_id=run_id, note=note, user=user), at=now)

        await self._db.transact(body)

    async def sweep_killed(self, now: float) -> list[str]:
        """Send ``run.killed`` once for each running run whose heartbeat went stale by ``now``.

        The runs keep their stored status (every read still reports them ``killed`` from
        the heartbeat); ``killed_at`` records that the event went out, so it goes out once
        whatever the number of sweeping servers (the update re-checks it under the row lock).
        Returns the runs marked.
        """

        async def body(db: Tx) -> list[str]:
            rows = await db.fetchall(
                "UPDATE runs SET killed_at = ? WHERE status = 'running' AND killed_at IS NULL"
                " AND heartbeat_at + heartbeat_timeout < ?"
                " RETURNING id, heartbeat_at, heartbeat_timeout",
                (now, now),
            )
            killed = [
                RunKilled(run_id=r["id"], heartbeat_at=r["heartbeat_at"],
                          heartbeat_timeout=r["heartbeat_timeout"])
                for r in rows
            ]  # fmt: skip
            await emit(db, *killed, at=now)
            return [k.run_id for k in killed]

        return await self._db.transact(body)

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset record."""

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            await db.execute(
                "INSERT INTO datasets (run_id, role, name, n_rows, n_cols, features, source,"
                " digest, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    dataset.role,
                    dataset.name,
                    dataset.n_rows,
                    dataset.n_cols,
                    json.dumps(dataset.features),
                    dataset.source,
                    dataset.digest,
                    json.dumps(dataset.extra, default=str),
                ),
            )

        await self._db.transact(body)

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs."""

        async def body(db: Tx) -> dict[str, dict[str, ParamValue]]:
            out: dict[str, dict[str, ParamValue]] = {rid: {} for rid in run_ids}
            for batch in in_batches(list(run_ids)):
                for rid, key, value in await db.fetchall(
                    "SELECT run_id, key, value FROM params"
                    f" WHERE run_id IN ({marks(batch)}) ORDER BY key",
                    batch,
                ):
                    out[rid][key] = decode_param(value)
            return out

        return await self._db.query(body)

    async def archive_runs(self, started_before: float, experiment: str | None) -> int:
        """Archive ended runs older than a time."""

        async def body(db: Tx) -> int:
            sql = (
                "UPDATE runs SET archived = 1 WHERE archived = 0 AND status != 'running'"
                " AND started_at < ?"
            )
            args: list[Any] = [started_before]
            if experiment is not None:
                sql += " AND experiment_id = (SELECT id FROM experiments WHERE name = ?)"
                args.append(experiment)
            return await db.execute(sql, args)

        return await self._db.transact(body)

    async def delete_archived(self) -> tuple[int, list[str]]:
        """Delete archived runs; return how many and the artifact URIs nothing references now."""

        async def body(db: Tx) -> tuple[int, list[str]]:
            uris = await db.fetchall(
                "SELECT DISTINCT uri FROM artifacts WHERE run_id IN"
                " (SELECT id FROM runs WHERE archived = 1)",
            )
            await db.execute(
                "UPDATE runs SET parent_id = NULL WHERE parent_id IN"
                " (SELECT id FROM runs WHERE archived = 1)"
            )
            deleted = await db.execute("DELETE FROM runs WHERE archived = 1")
            return deleted, await unused_in(db, [r["uri"] for r in uris])

        return await self._db.transact(body)
