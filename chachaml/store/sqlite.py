"""The SQLite backend: one write connection with ``BEGIN IMMEDIATE``, a small pool of readers.

WAL journal, a busy timeout and foreign keys are set on every connection; migrations are
applied on open inside a write transaction so concurrent openers never race. Several
processes may share one database file: writes wait for the lock (and are retried), reads
never block writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio

from chachaml.errors import Conflict, InvalidInput, NotFound, SchemaTooNew, StoreUnavailable
from chachaml.models import (
    Artifact,
    ArtifactRecord,
    Dataset,
    EndStatus,
    Experiment,
    MetricChunk,
    MetricSeries,
    MetricSummary,
    NewRun,
    ParamValue,
    Run,
    RunInfo,
    RunQuery,
)
from chachaml.store import rows
from chachaml.store.migrations.sqlite import MIGRATIONS
from chachaml.store.sqlite_registry import SQLiteRegistry

T = TypeVar("T")

BUSY_TIMEOUT_MS = 60_000
WRITE_RETRIES = 8
READERS = 2

STATUS_SQL = (
    "CASE WHEN r.status = 'running' AND r.heartbeat_at + r.heartbeat_timeout < :now "
    "THEN 'killed' ELSE r.status END"
)
RUN_SELECT = (
    "SELECT "
    + rows.RUN_COLUMNS.format(status=STATUS_SQL)
    + " FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)
EXPERIMENT_SELECT = """
    SELECT e.id, e.name, e.description, e.owner, e.created_at,
           (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.archived = 0),
           (SELECT max(coalesce(r.ended_at, r.heartbeat_at)) FROM runs r
             WHERE r.experiment_id = e.id AND r.archived = 0)
    FROM experiments e
"""
OP_SQL = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "="}


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:`` to a path."""
    if not url.startswith("sqlite:///"):
        raise InvalidInput(f"not a SQLite URL (expected sqlite:///path): {url!r}")
    path = url[len("sqlite:///") :]
    if not path:
        raise InvalidInput(f"SQLite URL has no path: {url!r}")
    return path


async def _connect(path: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await db.execute("PRAGMA foreign_keys = ON")
    await db.execute("PRAGMA synchronous = NORMAL")
    return db


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


class SQLiteStore(SQLiteRegistry):
    """A :class:`~chachaml.store.protocol.Store` on one SQLite file. Open with :meth:`open`."""

    def __init__(
        self, url: str, writer: aiosqlite.Connection, readers: list[aiosqlite.Connection]
    ) -> None:
        self._url = url
        self._writer = writer
        self._write_lock = anyio.Lock()
        self._readers = readers
        self._reader_slots = anyio.Semaphore(len(readers))
        self._free = list(readers)

    @classmethod
    async def open(cls, url: str) -> SQLiteStore:
        """Connect, switch to WAL, apply pending migrations and return the store."""
        path = path_from_url(url)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = await _connect(path)
            for attempt in range(WRITE_RETRIES):
                try:
                    await writer.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc) or attempt == WRITE_RETRIES - 1:
                        raise
                    await anyio.sleep(0.05 * 2**attempt)
            await _migrate(writer)
            readers = [await _connect(path) for _ in range(READERS)] if path != ":memory:" else []
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {url}: {exc}") from exc
        return cls(url, writer, readers or [writer])

    @property
    def url(self) -> str:
        """The URL this store was opened with."""
        return self._url

    async def close(self) -> None:
        """Close every connection."""
        for db in {id(c): c for c in [self._writer, *self._readers]}.values():
            await db.close()

    # plumbing

    async def _transact(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction, retrying when the file is busy."""
        async with self._write_lock:
            for attempt in range(WRITE_RETRIES):
                try:
                    await self._writer.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if _is_locked(exc) and attempt < WRITE_RETRIES - 1:
                        await anyio.sleep(0.05 * 2**attempt)
                        continue
                    raise StoreUnavailable(f"SQLite store is locked: {exc}") from exc
                try:
                    result = await body(self._writer)
                    await self._writer.execute("COMMIT")
                    return result
                except BaseException as exc:
                    await self._writer.execute("ROLLBACK")
                    if _is_locked(exc) and attempt < WRITE_RETRIES - 1:
                        await anyio.sleep(0.05 * 2**attempt)
                        continue
                    if isinstance(exc, sqlite3.Error) and not isinstance(
                        exc, sqlite3.IntegrityError
                    ):
                        raise StoreUnavailable(f"SQLite write failed: {exc}") from exc
                    raise
            raise AssertionError("unreachable")

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection inside a read transaction (a consistent snapshot)."""
        async with self._reader_slots:
            db = self._free.pop()
            try:
                if db is self._writer:
                    async with self._write_lock:
                        yield db
                    return
                await db.execute("BEGIN")
                try:
                    yield db
                finally:
                    await db.execute("COMMIT")
            finally:
                self._free.append(db)

    @staticmethod
    async def _fetchall(
        db: aiosqlite.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[Any]:
        async with db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    @staticmethod
    async def _require_run(db: aiosqlite.Connection, run_id: str) -> str:
        async with db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"run {run_id!r} not found")
        status: str = row[0]
        return status

    # experiments

    async def _ensure_experiment(self, db: aiosqlite.Connection, name: str) -> int:
        async with db.execute("SELECT id FROM experiments WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        if row is not None:
            return int(row[0])
        async with db.execute(
            "INSERT INTO experiments (name, created_at) VALUES (?, ?)", (name, time.time())
        ) as cur:
            return int(cur.lastrowid or 0)

    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create or update an experiment (description and owner, when given)."""

        async def body(db: aiosqlite.Connection) -> None:
            await self._ensure_experiment(db, name)
            if description is not None:
                await db.execute(
                    "UPDATE experiments SET description = ? WHERE name = ?", (description, name)
                )
            if owner is not None:
                await db.execute("UPDATE experiments SET owner = ? WHERE name = ?", (owner, name))

        await self._transact(body)
        return await self.get_experiment(name)

    async def get_experiment(self, name: str) -> Experiment:
        """One experiment by name."""
        async with self._read() as db:
            found = await self._fetchall(db, EXPERIMENT_SELECT + " WHERE e.name = ?", (name,))
        if not found:
            raise NotFound(f"experiment {name!r} not found")
        return rows.experiment_from_row(found[0])

    async def list_experiments(self) -> list[Experiment]:
        """All experiments, most recently active first."""
        async with self._read() as db:
            found = await self._fetchall(db, EXPERIMENT_SELECT)
        exps = [rows.experiment_from_row(r) for r in found]
        return sorted(exps, key=lambda e: e.last_activity or e.created_at, reverse=True)

    # run writes

    async def create_run(self, run: NewRun) -> None:
        """Insert a new running run."""

        async def body(db: aiosqlite.Connection) -> None:
            exp_id = await self._ensure_experiment(db, run.experiment)
            if run.parent_id is not None:
                await self._require_run(db, run.parent_id)
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
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"run {run.id!r} already exists") from exc
            if run.tags:
                await db.executemany(
                    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(run.id, k, v) for k, v in run.tags.items()],
                )

        await self._transact(body)

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> None:
        """Mark a running run as ended."""

        async def body(db: aiosqlite.Connection) -> None:
            current = await self._require_run(db, run_id)
            if current != "running":
                raise Conflict(f"run {run_id!r} has already ended ({current})")
            await db.execute(
                "UPDATE runs SET status = ?, error = ?, ended_at = ?, heartbeat_at = ?"
                " WHERE id = ?",
                (status, error, ended_at, ended_at, run_id),
            )

        await self._transact(body)

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> None:
        """Refresh the heartbeat of running runs."""
        if not run_ids:
            return

        async def body(db: aiosqlite.Connection) -> None:
            await db.executemany(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                [(at, rid) for rid in run_ids],
            )

        await self._transact(body)

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params, refusing to change an existing value."""
        encoded = {k: rows.encode_param(v) for k, v in params.items()}

        async def body(db: aiosqlite.Connection) -> None:
            await self._require_run(db, run_id)
            keys = list(encoded)
            marks = ",".join("?" * len(keys))
            existing = await self._fetchall(
                db,
                f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})",
                [run_id, *keys],
            )
            for key, stored in existing:
                if stored != encoded[key]:
                    raise Conflict(
                        f"param {key!r} of run {run_id!r} is already {stored}; params are"
                        f" immutable, cannot change it to {encoded[key]}"
                    )
            known = {k for k, _ in existing}
            await db.executemany(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in encoded.items() if k not in known],
            )

        if encoded:
            await self._transact(body)

    async def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags, overwriting earlier values."""

        async def body(db: aiosqlite.Connection) -> None:
            await self._require_run(db, run_id)
            await db.executemany(
                "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                [(run_id, k, v) for k, v in tags.items()],
            )

        if tags:
            await self._transact(body)

    async def set_note(self, run_id: str, note: str) -> None:
        """Replace the run's note."""

        async def body(db: aiosqlite.Connection) -> None:
            await self._require_run(db, run_id)
            await db.execute("UPDATE runs SET note = ? WHERE id = ?", (note, run_id))

        await self._transact(body)

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset record."""

        async def body(db: aiosqlite.Connection) -> None:
            await self._require_run(db, run_id)
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

        await self._transact(body)

    async def log_metrics(self, chunks: Sequence[MetricChunk]) -> None:
        """Insert chunks and upsert each (run, key) summary in one transaction."""
        if not chunks:
            return

        async def body(db: aiosqlite.Connection) -> None:
            for run_id in {c.run_id for c in chunks}:
                await self._require_run(db, run_id)
            await db.executemany(
                "INSERT INTO metric_chunks (run_id, key, count, steps, vals, times)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(c.run_id, c.key, c.count, c.steps, c.values, c.timestamps) for c in chunks],
            )
            await db.executemany(
                """INSERT INTO metric_summary
                   (run_id, key, last_value, last_step, last_time, min_value, max_value, count)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id, key) DO UPDATE SET
                     last_value = CASE WHEN excluded.last_step >= last_step
                                  THEN excluded.last_value ELSE last_value END,
                     last_time = CASE WHEN excluded.last_step >= last_step
                                 THEN excluded.last_time ELSE last_time END,
                     last_step = max(last_step, excluded.last_step),
                     min_value = coalesce(min(min_value, excluded.min_value),
                                          min_value, excluded.min_value),
                     max_value = coalesce(max(max_value, excluded.max_value),
                                          max_value, excluded.max_value),
                     count = count + excluded.count""",
                [
                    (
                        c.run_id,
                        c.key,
                        c.last_value,
                        c.last_step,
                        c.last_time,
                        c.min_value,
                        c.max_value,
                        c.count,
                    )
                    for c in chunks
                ],
            )

        await self._transact(body)

    async def add_artifact(self, record: ArtifactRecord) -> None:
        """Record an artifact (replacing one of the same name)."""

        async def body(db: aiosqlite.Connection) -> None:
            await self._require_run(db, record.run_id)
            await db.execute(
                "INSERT OR REPLACE INTO artifacts (run_id, name, content_type, serializer, size,"
                " sha256, uri, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.name,
                    record.content_type,
                    record.serializer,
                    record.size,
                    record.sha256,
                    record.uri,
                    record.created_at,
                ),
            )

        await self._transact(body)

    # run reads

    async def _run_extras(
        self, db: aiosqlite.Connection, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, float | None]]]:
        tags: dict[str, dict[str, str]] = {}
        metrics: dict[str, dict[str, float | None]] = {}
        for batch in rows.in_batches(ids):
            marks = ",".join("?" * len(batch))
            for rid, key, value in await self._fetchall(
                db, f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", batch
            ):
                tags.setdefault(rid, {})[key] = value
            for rid, key, value in await self._fetchall(
                db,
                f"SELECT run_id, key, last_value FROM metric_summary WHERE run_id IN ({marks})",
                batch,
            ):
                metrics.setdefault(rid, {})[key] = value
        return tags, metrics

    async def get_run(self, run_id: str) -> Run:
        """Everything stored about one run."""
        now = time.time()
        async with self._read() as db:
            found = await self._fetchall(
                db, RUN_SELECT + " WHERE r.id = :id", {"id": run_id, "now": now}
            )
            if not found:
                raise NotFound(f"run {run_id!r} not found")
            tags, metrics = await self._run_extras(db, [run_id])
            info = rows.run_info_from_row(found[0], tags, metrics)
            params = await self._fetchall(
                db, "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)
            )
            summaries = await self._fetchall(
                db,
                "SELECT key, last_value, last_step, last_time, min_value, max_value, count"
                " FROM metric_summary WHERE run_id = ? ORDER BY key",
                (run_id,),
            )
            (note, environment), *_ = await self._fetchall(
                db, "SELECT note, environment FROM runs WHERE id = ?", (run_id,)
            )
            datasets = await self._fetchall(
                db,
                "SELECT role, name, n_rows, n_cols, features, source, digest, extra"
                " FROM datasets WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
            artifacts = await self._list_artifacts(db, run_id)
            children = await self._fetchall(
                db, "SELECT id FROM runs WHERE parent_id = ? ORDER BY started_at", (run_id,)
            )
        return Run(
            **info.model_dump(),
            params={k: rows.decode_param(v) for k, v in params},
            metric_summaries={r[0]: rows.summary_from_row(r) for r in summaries},
            note=note,
            datasets=[rows.dataset_from_row(d) for d in datasets],
            artifacts=artifacts,
            environment=json.loads(environment),
            children=[c[0] for c in children],
        )

    def _where(self, query: RunQuery, now: float) -> tuple[str, str, dict[str, Any]]:
        """The JOIN and WHERE clauses and named parameters for a run query."""
        where: list[str] = []
        params: dict[str, Any] = {"now": now}
        join = ""
        if query.only_archived:
            where.append("r.archived = 1")
        elif not query.include_archived:
            where.append("r.archived = 0")
        if query.experiment is not None:
            where.append("e.name = :experiment")
            params["experiment"] = query.experiment
        if query.status == "killed":
            where.append(
                "(r.status = 'killed' OR (r.status = 'running'"
                " AND r.heartbeat_at + r.heartbeat_timeout < :now))"
            )
        elif query.status == "running":
            where.append("r.status = 'running' AND r.heartbeat_at + r.heartbeat_timeout >= :now")
        elif query.status is not None:
            where.append("r.status = :status")
            params["status"] = query.status
        if query.created_by is not None:
            where.append("r.created_by = :created_by")
            params["created_by"] = query.created_by
        if query.since is not None:
            where.append("r.started_at >= :since")
            params["since"] = query.since.timestamp()
        if query.until is not None:
            where.append("r.started_at < :until")
            params["until"] = query.until.timestamp()
        if query.parent_id is not None:
            where.append("r.parent_id = :parent_id")
            params["parent_id"] = query.parent_id
        if query.order_by_metric is not None:
            join = " JOIN metric_summary ms ON ms.run_id = r.id AND ms.key = :order_key"
            where.append("ms.last_value IS NOT NULL")
            params["order_key"] = query.order_by_metric
        for i, cond in enumerate(query.metric_conditions):
            params[f"mk{i}"] = cond.key
            params[f"mv{i}"] = cond.value
            op = OP_SQL[cond.op]
            if cond.key == query.order_by_metric:
                where.append(f"ms.last_value {op} :mv{i}")
            else:
                where.append(
                    "EXISTS (SELECT 1 FROM metric_summary m WHERE m.run_id = r.id"
                    f" AND m.key = :mk{i} AND m.last_value {op} :mv{i})"
                )
        for i, (key, value) in enumerate(query.params.items()):
            params[f"pk{i}"] = key
            params[f"pv{i}"] = rows.encode_param(value)
            where.append(
                "EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id"
                f" AND p.key = :pk{i} AND p.value = :pv{i})"
            )
        for i, (key, value) in enumerate(query.tags.items()):
            params[f"tk{i}"] = key
            params[f"tv{i}"] = value
            where.append(
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.id"
                f" AND t.key = :tk{i} AND t.value = :tv{i})"
            )
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        return join, clause, params

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching a query."""
        join, clause, params = self._where(query, time.time())
        if query.order_by_metric is not None:
            direction = "DESC" if query.direction == "max" else "ASC"
            order = f" ORDER BY ms.last_value {direction}, r.started_at DESC"
        else:
            order = " ORDER BY r.started_at DESC"
        limit = ""
        if query.limit is not None:
            limit = " LIMIT :limit OFFSET :offset"
            params.update(limit=query.limit, offset=query.offset)
        elif query.offset:
            limit = " LIMIT -1 OFFSET :offset"
            params["offset"] = query.offset
        async with self._read() as db:
            found = await self._fetchall(db, RUN_SELECT + join + clause + order + limit, params)
            tags, metrics = await self._run_extras(db, [r[0] for r in found])
        return [rows.run_info_from_row(r, tags, metrics) for r in found]

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match, ignoring limit and offset."""
        join, clause, params = self._where(query, time.time())
        sql = "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id"
        async with self._read() as db:
            found = await self._fetchall(db, sql + join + clause, params)
        return int(found[0][0])

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs."""
        out: dict[str, dict[str, ParamValue]] = {rid: {} for rid in run_ids}
        async with self._read() as db:
            for batch in rows.in_batches(list(run_ids)):
                marks = ",".join("?" * len(batch))
                for rid, key, value in await self._fetchall(
                    db,
                    f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks}) ORDER BY key",
                    batch,
                ):
                    out[rid][key] = rows.decode_param(value)
        return out

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Each metric's summary for one run."""
        async with self._read() as db:
            await self._require_run(db, run_id)
            found = await self._fetchall(
                db,
                "SELECT key, last_value, last_step, last_time, min_value, max_value, count"
                " FROM metric_summary WHERE run_id = ? ORDER BY key",
                (run_id,),
            )
        return {r[0]: rows.summary_from_row(r) for r in found}

    async def metric_history(self, run_id: str, key: str) -> MetricSeries:
        """All points of one metric."""
        async with self._read() as db:
            await self._require_run(db, run_id)
            chunks = await self._fetchall(
                db,
                "SELECT steps, vals, times FROM metric_chunks WHERE run_id = ? AND key = ?"
                " ORDER BY id",
                (run_id, key),
            )
            if not chunks:
                keys = await self._fetchall(
                    db, "SELECT key FROM metric_summary WHERE run_id = ? ORDER BY key", (run_id,)
                )
        if not chunks:
            logged = ", ".join(k[0] for k in keys) or "none"
            raise NotFound(f"run {run_id!r} has no metric {key!r} (logged metrics: {logged})")
        return rows.series_from_chunks(run_id, key, chunks)

    async def _list_artifacts(self, db: aiosqlite.Connection, run_id: str) -> list[Artifact]:
        found = await self._fetchall(
            db,
            "SELECT name, content_type, serializer, size, sha256, uri, created_at"
            " FROM artifacts WHERE run_id = ? ORDER BY name",
            (run_id,),
        )
        return [rows.artifact_from_row(r) for r in found]

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact, or ``NotFound`` listing what the run has."""
        async with self._read() as db:
            await self._require_run(db, run_id)
            arts = await self._list_artifacts(db, run_id)
        for art in arts:
            if art.name == name:
                return art
        names = ", ".join(a.name for a in arts) or "none"
        raise NotFound(f"run {run_id!r} has no artifact {name!r} (its artifacts: {names})")

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """A run's artifacts."""
        async with self._read() as db:
            await self._require_run(db, run_id)
            return await self._list_artifacts(db, run_id)

    # cleanup

    async def archive_runs(self, started_before: float, experiment: str | None) -> int:
        """Archive ended runs older than a time."""

        async def body(db: aiosqlite.Connection) -> int:
            sql = (
                "UPDATE runs SET archived = 1 WHERE archived = 0 AND status != 'running'"
                " AND started_at < ?"
            )
            args: list[Any] = [started_before]
            if experiment is not None:
                sql += " AND experiment_id = (SELECT id FROM experiments WHERE name = ?)"
                args.append(experiment)
            async with db.execute(sql, args) as cur:
                return int(cur.rowcount)

        return await self._transact(body)

    async def delete_archived(self) -> tuple[int, list[str]]:
        """Delete archived runs; return how many and the artifact URIs nothing references now."""

        async def body(db: aiosqlite.Connection) -> tuple[int, list[str]]:
            uris = await self._fetchall(
                db,
                "SELECT DISTINCT uri FROM artifacts WHERE run_id IN"
                " (SELECT id FROM runs WHERE archived = 1)",
            )
            await db.execute(
                "UPDATE runs SET parent_id = NULL WHERE parent_id IN"
                " (SELECT id FROM runs WHERE archived = 1)"
            )
            async with db.execute("DELETE FROM runs WHERE archived = 1") as cur:
                deleted = int(cur.rowcount)
            orphaned: list[str] = []
            for (uri,) in uris:
                still = await self._fetchall(db, "SELECT 1 FROM artifacts WHERE uri = ?", (uri,))
                if not still:
                    orphaned.append(uri)
            return deleted, orphaned

        return await self._transact(body)


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply pending migrations; refuse a database newer than this code."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        async with db.execute("SELECT max(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = (row[0] if row else None) or 0
        known = MIGRATIONS[-1].version
        if current > known:
            raise SchemaTooNew(
                f"the database schema is version {current}, newer than this chachaml knows"
                f" ({known}); upgrade chachaml to use this store"
            )
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise
