"""Pipelines and their steps, each moved only along the transitions its contract allows.

Every write reads the row it changes first inside its transaction and updates it only from
the state the contract allows, so a late or repeated write raises ``Conflict`` instead of
overwriting an outcome. Whether a ``running`` pipeline is really alive is read from its
run's heartbeat at query time, never stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from chachaml.errors import Conflict, NotFound
from chachaml.records.events import PipelineEnded, PipelineStarted, PipelineStepChanged
from chachaml.records.pipelines import (
    NewPipeline,
    PipelineDetail,
    PipelineInfo,
    PipelineStep,
)
from chachaml.records.runs import to_datetime
from chachaml.store.protocol import PipelineEnd, StepEnd
from chachaml.store.sql.database import Database, IntegrityViolation, Row, Tx
from chachaml.store.sql.events import emit
from chachaml.store.sql.rows import ALL_ROWS, in_batches, marks, require_run

# A running pipeline is dead when its run ended, vanished or stopped sending heartbeats.
PIPELINE_STATUS_SQL = (
    "CASE WHEN p.status = 'running' AND (r.id IS NULL OR r.status != 'running'"
    " OR r.heartbeat_at + r.heartbeat_timeout < ?) THEN 'killed' ELSE p.status END"
)
# The first parameter of every PIPELINE_SELECT query is "now", for the computed status.
PIPELINE_SELECT = (
    "SELECT p.id, p.name, p.description, "
    + PIPELINE_STATUS_SQL
    + " AS status, p.run_id, p.created_by, p.started_at, p.ended_at, p.error, p.max_parallel,"
    " p.resumes FROM pipelines p LEFT JOIN runs r ON r.id = p.run_id"
)
STEP_SELECT = (
    "SELECT name, position, depends_on, status, started_at, ended_at, error, attempts,"
    " run_id, result, target, retries, backoff, timeout FROM pipeline_steps"
)
# One step with its pipeline's computed status (step columns qualified: the tables share names).
ONE_STEP_SELECT = (
    "SELECT s.name, s.position, s.depends_on, s.status, s.started_at, s.ended_at, s.error,"
    " s.attempts, s.run_id, s.result, s.target, s.retries, s.backoff, s.timeout, "
    + PIPELINE_STATUS_SQL
    + " AS pipeline_status FROM pipeline_steps s JOIN pipelines p ON p.id = s.pipeline_id"
    " LEFT JOIN runs r ON r.id = p.run_id WHERE s.pipeline_id = ? AND s.name = ?"
)
STEP_FROM: dict[str, tuple[str, ...]] = {
    "running": ("pending", "running"),
    "completed": ("running",),
    "failed": ("running",),
    "killed": ("running",),
    "skipped": ("pending",),
}


def _step_status(stored: str, pipeline_status: str) -> str:
    return "killed" if stored == "running" and pipeline_status == "killed" else stored


def _info(row: Row, counts: dict[str, int]) -> PipelineInfo:
    return PipelineInfo(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        status=row["status"],
        run_id=row["run_id"],
        created_by=row["created_by"],
        started_at=to_datetime(row["started_at"]),
        ended_at=to_datetime(row["ended_at"]),
        error=row["error"],
        max_parallel=row["max_parallel"],
        resumes=row["resumes"],
        step_counts=counts,
    )


def _step(row: Row, pipeline_status: str) -> PipelineStep:
    stored = row["result"] is not None
    return PipelineStep(
        name=row["name"],
        position=row["position"],
        depends_on=json.loads(row["depends_on"]),
        status=_step_status(row["status"], pipeline_status),  # type: ignore[arg-type]
        started_at=to_datetime(row["started_at"]),
        ended_at=to_datetime(row["ended_at"]),
        error=row["error"],
        attempts=row["attempts"],
        run_id=row["run_id"],
        result_stored=stored,
        result=json.loads(row["result"]) if stored else None,
        target=row["target"],
        retries=row["retries"],
        backoff=row["backoff"],
        timeout=row["timeout"],
    )


class Pipelines:
    """Pipelines and their steps."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # lookups inside a transaction or snapshot

    @staticmethod
    async def _pipeline_status(db: Tx, pipeline_id: str, now: float) -> str:
        found = await db.fetchall(
            f"SELECT {PIPELINE_STATUS_SQL} AS status"
            " FROM pipelines p LEFT JOIN runs r ON r.id = p.run_id WHERE p.id = ?",
            (now, pipeline_id),
        )
        if not found:
            raise NotFound(f"pipeline {pipeline_id!r} not found")
        status: str = found[0]["status"]
        return status

    @staticmethod
    async def _step_row(db: Tx, pipeline_id: str, step: str) -> str:
        found = await db.fetchall(
            "SELECT status FROM pipeline_steps WHERE pipeline_id = ? AND name = ?",
            (pipeline_id, step),
        )
        if found:
            status: str = found[0]["status"]
            return status
        names = await db.fetchall(
            "SELECT name FROM pipeline_steps WHERE pipeline_id = ? ORDER BY position",
            (pipeline_id,),
        )
        if not names:
            raise NotFound(f"pipeline {pipeline_id!r} not found")
        listed = ", ".join(n["name"] for n in names)
        raise NotFound(f"pipeline {pipeline_id!r} has no step {step!r} (its steps: {listed})")

    @staticmethod
    async def _counts(db: Tx, infos: Sequence[Row]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {r["id"]: {} for r in infos}
        status_of = {r["id"]: r["status"] for r in infos}
        for batch in in_batches(list(out)):
            for pid, status, n in await db.fetchall(
                "SELECT pipeline_id, status, count(*) FROM pipeline_steps"
                f" WHERE pipeline_id IN ({marks(batch)}) GROUP BY pipeline_id, status",
                batch,
            ):
                shown = _step_status(status, status_of[pid])
                out[pid][shown] = out[pid].get(shown, 0) + int(n)
        return out

    # writes

    async def create_pipeline(self, new: NewPipeline) -> None:
        """Record a running pipeline and its pending steps."""

        async def body(db: Tx) -> None:
            await require_run(db, new.run_id)
            try:
                await db.execute(
                    "INSERT INTO pipelines (id, name, description, run_id, status, created_by,"
                    " started_at, max_parallel) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                    (
                        new.id,
                        new.name,
                        new.description,
                        new.run_id,
                        new.created_by,
                        new.started_at,
                        new.max_parallel,
                    ),
                )
            except IntegrityViolation as exc:
                raise Conflict(f"pipeline {new.id!r} already exists") from exc
            await db.executemany(
                "INSERT INTO pipeline_steps (pipeline_id, name, position, depends_on, target,"
                " retries, backoff, timeout, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                [
                    (
                        new.id,
                        s.name,
                        i,
                        json.dumps(s.depends_on),
                        s.target,
                        s.retries,
                        s.backoff,
                        s.timeout,
                    )
                    for i, s in enumerate(new.steps)
                ],
            )
            started = PipelineStarted(pipeline_id=new.id, name=new.name, run_id=new.run_id)
            await emit(db, started, at=new.started_at)

        await self._db.transact(body)

    async def _move_step(
        self, db: Tx, pipeline_id: str, step: str, to: str, sql: str, params: Sequence[Any]
    ) -> None:
        current = await self._step_row(db, pipeline_id, step)
        if current not in STEP_FROM[to]:
            raise Conflict(
                f"step {step!r} of pipeline {pipeline_id!r} is {current}; it cannot become {to}"
            )
        await db.execute(
            f"UPDATE pipeline_steps SET {sql} WHERE pipeline_id = ? AND name = ?",
            [*params, pipeline_id, step],
        )

    async def start_pipeline_step(
        self, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Mark a step running on a run (each attempt has its own run)."""

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            await self.start_step_in(db, pipeline_id, step, run_id, attempt, started_at)

        await self._db.transact(body)

    async def start_step_in(
        self, db: Tx, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Mark a step running inside the caller's transaction (its run exists there)."""
        await self._move_step(
            db,
            pipeline_id,
            step,
            "running",
            "status = 'running', run_id = ?, attempts = ?, started_at = ?, ended_at = NULL,"
            " error = NULL, result = NULL",
            (run_id, attempt, started_at),
        )
        changed = PipelineStepChanged(pipeline_id=pipeline_id, step=step, status="running",
                                      attempt=attempt, run_id=run_id)  # fmt: skip
        await emit(db, changed, at=started_at)

    async def end_pipeline_step(
        self,
        pipeline_id: str,
        step: str,
        status: StepEnd,
        ended_at: float,
        error: str | None = None,
        result: str | None = None,
    ) -> None:
        """End a step: completed with its result, failed/killed with an error, or skipped."""
        await self._db.transact(
            lambda db: self.end_step_in(db, pipeline_id, step, status, ended_at, error, result)
        )

    async def end_step_in(
        self,
        db: Tx,
        pipeline_id: str,
        step: str,
        status: StepEnd,
        ended_at: float,
        error: str | None,
        result: str | None,
    ) -> None:
        """:meth:`end_pipeline_step` inside the caller's transaction."""
        await self._move_step(
            db,
            pipeline_id,
            step,
            status,
            "status = ?, ended_at = ?, error = ?, result = ?",
            (status, ended_at, error, result),
        )
        (row,) = await db.fetchall(
            "SELECT run_id, attempts FROM pipeline_steps WHERE pipeline_id = ? AND name = ?",
            (pipeline_id, step),
        )
        changed = PipelineStepChanged(pipeline_id=pipeline_id, step=step, status=status,
                                      attempt=row["attempts"], run_id=row["run_id"],
                                      error=error)  # fmt: skip
        await emit(db, changed, at=ended_at)

    async def end_pipeline(
        self, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
    ) -> None:
        """Mark a running pipeline ended."""

        async def body(db: Tx) -> None:
            found = await db.fetchall(
                "SELECT status, run_id FROM pipelines WHERE id = ?", (pipeline_id,)
            )
            if not found:
                raise NotFound(f"pipeline {pipeline_id!r} not found")
            if found[0]["status"] != "running":
                raise Conflict(f"pipeline {pipeline_id!r} has already ended ({found[0]['status']})")
            await db.execute(
                "UPDATE pipelines SET status = ?, error = ?, ended_at = ? WHERE id = ?",
                (status, error, ended_at, pipeline_id),
            )
            ended = PipelineEnded(pipeline_id=pipeline_id, status=status, error=error,
                                  run_id=found[0]["run_id"])  # fmt: skip
            await emit(db, ended, at=ended_at)

        await self._db.transact(body)

    async def resume_pipeline(
        self, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
    ) -> PipelineDetail:
        """Reset steps to pending and put the pipeline back to running on a new run."""

        async def body(db: Tx) -> None:
            await require_run(db, run_id)
            # lock the pipeline row first, so two resumes of one pipeline run one after the other
            await db.execute("UPDATE pipelines SET resumes = resumes WHERE id = ?", (pipeline_id,))
            status = await self._pipeline_status(db, pipeline_id, at)
            if status in ("running", "completed"):
                raise Conflict(
                    f"pipeline {pipeline_id!r} is {status}; only a pipeline that"
                    " failed or was killed can be resumed"
                )
            for step in rerun:
                await self._step_row(db, pipeline_id, step)
            await db.executemany(
                "UPDATE pipeline_steps SET status = 'pending', started_at = NULL,"
                " ended_at = NULL, error = NULL, attempts = 0, run_id = NULL, result = NULL"
                " WHERE pipeline_id = ? AND name = ?",
                [(pipeline_id, step) for step in rerun],
            )
            await db.execute(
                "UPDATE pipelines SET status = 'running', run_id = ?, started_at = ?,"
                " ended_at = NULL, error = NULL, resumes = resumes + 1 WHERE id = ?",
                (run_id, at, pipeline_id),
            )
            (named,) = await db.fetchall("SELECT name FROM pipelines WHERE id = ?", (pipeline_id,))
            resumed = PipelineStarted(pipeline_id=pipeline_id, name=named["name"], run_id=run_id,
                                      resumed=True)  # fmt: skip
            reset = [PipelineStepChanged(pipeline_id=pipeline_id, step=step, status="pending")
                     for step in rerun]  # fmt: skip
            await emit(db, resumed, *reset, at=at)

        await self._db.transact(body)
        return await self.get_pipeline(pipeline_id)

    # reads

    async def list_pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[PipelineInfo]:
        """Pipelines, newest first."""
        now = time.time()
        where: list[str] = []
        params: list[Any] = [now]
        if name is not None:
            where.append("p.name = ?")
            params.append(name)
        if status is not None:
            where.append(f"({PIPELINE_STATUS_SQL}) = ?")
            params += [now, status]
        sql = PIPELINE_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY p.started_at DESC, p.id LIMIT ?"
        params.append(limit if limit is not None else ALL_ROWS)

        async def body(db: Tx) -> list[PipelineInfo]:
            found = await db.fetchall(sql, params)
            counts = await self._counts(db, found)
            return [_info(r, counts[r["id"]]) for r in found]

        return await self._db.query(body)

    async def get_pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline with its steps in definition order."""

        async def body(db: Tx) -> PipelineDetail:
            found = await db.fetchall(
                PIPELINE_SELECT + " WHERE p.id = ?", (time.time(), pipeline_id)
            )
            if not found:
                raise NotFound(f"pipeline {pipeline_id!r} not found")
            counts = await self._counts(db, found)
            steps = await db.fetchall(
                STEP_SELECT + " WHERE pipeline_id = ? ORDER BY position", (pipeline_id,)
            )
            row = found[0]
            info = _info(row, counts[pipeline_id])
            return PipelineDetail(
                **info.model_dump(), steps=[_step(s, row["status"]) for s in steps]
            )

        return await self._db.query(body)

    async def get_pipeline_step(self, pipeline_id: str, step: str) -> PipelineStep:
        """One step of a pipeline: one indexed query, however many steps the pipeline has."""

        async def body(db: Tx) -> PipelineStep:
            found = await db.fetchall(ONE_STEP_SELECT, (time.time(), pipeline_id, step))
            if not found:
                await self._step_row(db, pipeline_id, step)  # raises NotFound naming what
                raise NotFound(f"pipeline {pipeline_id!r} has no step {step!r}")
            return _step(found[0], found[0]["pipeline_status"])

        return await self._db.query(body)
