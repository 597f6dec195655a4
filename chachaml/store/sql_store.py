"""The store logic shared by the SQL backends, written once against :class:`Tx`.

:class:`SQLStore` implements the whole :class:`~chachaml.store.protocol.Store` protocol in SQL
that SQLite and PostgreSQL both accept; a backend subclass supplies connections through
``_transact`` (one write transaction, serialised or isolated so concurrent writers never lose
each other's data) and ``_query`` (a read, in one round trip to the backend where it can),
plus migrations and ``close``.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records.runs import (
    Artifact,
    ArtifactRecord,
    BestRun,
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
from chachaml.store.sql_alerts import SQLAlerts
from chachaml.store.sql_api import SQLApi
from chachaml.store.sql_driver import IntegrityViolation, Row, Tx
from chachaml.store.sql_pipelines import SQLPipelines
from chachaml.store.sql_registry import SQLRegistry

T = TypeVar("T")

ALL_ROWS = 2**62  # LIMIT for "no limit" that both dialects accept
STATUS_SQL = (
    "CASE WHEN r.status = 'running' AND r.heartbeat_at + r.heartbeat_timeout < ? "
    "THEN 'killed' ELSE r.status END"
)
# The first parameter of every RUN_SELECT query is "now", for the computed status. Runs are
# selected from their own table alone: experiment names and ids come from a per-store cache
# (an experiment is never renamed or deleted), which spares PostgreSQL planning a join and a
# subquery on every listing (half its planning time for best_run).
RUN_SELECT = "SELECT " + rows.RUN_COLUMNS.format(status=STATUS_SQL) + " FROM runs r"
# ORDER BY of each run field, ties broken newest first. Runs without a name, or still
# running (no duration), come last either way; 4 is the computed status column.
RUN_ORDER_SQL = {
    "started": "r.started_at {d}, r.id {d}",
    "name": "r.name IS NULL, r.name {d}, r.started_at DESC, r.id DESC",
    "experiment": "(SELECT e.name FROM experiments e WHERE e.id = r.experiment_id) {d},"
    " r.started_at DESC, r.id DESC",
    "status": "4 {d}, r.started_at DESC, r.id DESC",
    "user": "r.created_by {d}, r.started_at DESC, r.id DESC",
    "duration": "r.ended_at IS NULL, r.ended_at - r.started_at {d}, r.started_at DESC, r.id DESC",
}
EXPERIMENT_SELECT = """
    SELECT e.id, e.name, e.description, e.owner, e.created_at,
           (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.archived = 0),
           (SELECT max(coalesce(r.ended_at, r.heartbeat_at)) FROM runs r
             WHERE r.experiment_id = e.id AND r.archived = 0)
    FROM experiments e
"""
OP_SQL = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "="}


class SQLStore(SQLRegistry, SQLPipelines, SQLAlerts, SQLApi, ABC):
    """Tracking and registry operations in portable SQL; subclasses own the connections."""

    # Two select-list columns, over a listing's rows as ``p``, that carry each run's tags and
    # latest metrics as arrays of (key, value) in the listing's own statement: one network
    # round trip instead of two. ``None`` reads them in two more statements, which costs an
    # embedded database nothing.
    LISTING_EXTRAS: str | None = None

    def __init__(self, url: str) -> None:
        self._url = url
        self._experiment_names: dict[int, str] = {}  # never renamed or deleted: safe to keep
        self._experiment_ids: dict[str, int] = {}

    @abstractmethod
    async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` in one write transaction (retried by the backend when busy)."""

    @abstractmethod
    async def _query(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body``, which only reads, on a connection of the backend's read pool."""

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one query."""
        return await self._query(lambda db: db.fetchall(sql, params))

    @abstractmethod
    async def close(self) -> None:
        """Release every connection."""

    @property
    def url(self) -> str:
        """The URL this store was opened with."""
        return self._url

    @staticmethod
    async def _require_run(db: Tx, run_id: str) -> str:
        found = await db.fetchall("SELECT status FROM runs WHERE id = ?", (run_id,))
        if not found:
            raise NotFound(f"run {run_id!r} not found")
        status: str = found[0][0]
        return status

    # experiments

    @staticmethod
    async def _ensure_experiment(db: Tx, name: str) -> int:
        # look first: an INSERT that conflicts would still use up an id from the sequence
        found = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (name,))
        if not found:
            await db.execute(
                "INSERT INTO experiments (name, created_at) VALUES (?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, time.time()),
            )
            found = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (name,))
        return int(found[0][0])

    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create or update an experiment (description and owner, when given)."""

        async def body(db: Tx) -> None:
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
        found = await self._fetch(EXPERIMENT_SELECT + " WHERE e.name = ?", (name,))
        if not found:
            raise NotFound(f"experiment {name!r} not found")
        return rows.experiment_from_row(found[0])

    async def list_experiments(self) -> list[Experiment]:
        """All experiments, most recently active first."""
        found = await self._fetch(EXPERIMENT_SELECT)
        exps = [rows.experiment_from_row(r) for r in found]
        return sorted(exps, key=lambda e: e.last_activity or e.created_at, reverse=True)

    # run writes

    async def create_run(self, run: NewRun) -> None:
        """Insert a new running run."""

        async def body(db: Tx) -> None:
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
            except IntegrityViolation as exc:
                raise Conflict(f"run {run.id!r} already exists") from exc
            if run.tags:
                await db.executemany(
                    "INSERT INTO tags (run_id, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)",
                    [(run.id, k, v, run.created_by, run.started_at) for k, v in run.tags.items()],
                )

        await self._transact(body)

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> None:
        """Mark a running run as ended."""

        async def body(db: Tx) -> None:
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

        async def body(db: Tx) -> None:
            await db.executemany(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                [(at, rid) for rid in run_ids],
            )

        await self._transact(body)

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params, refusing to change an existing value."""
        encoded = {k: rows.encode_param(v) for k, v in params.items()}

        async def body(db: Tx) -> None:
            await self._require_run(db, run_id)
            keys = list(encoded)
            marks = ",".join("?" * len(keys))
            existing = await db.fetchall(
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

    async def set_tags(self, run_id: str, tags: Mapping[str, str], user: str | None = None) -> None:
        """Set tags, overwriting earlier values; who and when are kept beside each."""
        now = time.time()

        async def body(db: Tx) -> None:
            await self._require_run(db, run_id)
            await db.executemany(
                "INSERT INTO tags (run_id, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
                " set_by = excluded.set_by, set_at = excluded.set_at",
                [(run_id, k, v, user, now) for k, v in tags.items()],
            )

        if tags:
            await self._transact(body)

    async def set_note(self, run_id: str, note: str, user: str | None = None) -> None:
        """Replace the run's note; who and when are kept beside it."""

        async def body(db: Tx) -> None:
            await self._require_run(db, run_id)
            await db.execute(
                "UPDATE runs SET note = ?, note_by = ?, note_at = ? WHERE id = ?",
                (note, user, time.time(), run_id),
            )

        await self._transact(body)

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset record."""

        async def body(db: Tx) -> None:
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
        """Insert chunks and upsert each (run, key) summary in one transaction.

        Chunks carrying a ``batch`` id are skipped when their run already holds that batch:
        the id is recorded in the same transaction as the points, so a batch sent again
        after a lost reply or a crash is stored once (the primary key settles races).
        """
        if not chunks:
            return

        async def body(db: Tx) -> None:
            for run_id in {c.run_id for c in chunks}:
                await self._require_run(db, run_id)
            stored: set[tuple[str, str]] = set()
            for run_id, batch in {(c.run_id, c.batch) for c in chunks if c.batch is not None}:
                if not await db.execute(
                    "INSERT INTO metric_batches (run_id, batch) VALUES (?, ?)"
                    " ON CONFLICT (run_id, batch) DO NOTHING",
                    (run_id, batch),
                ):
                    stored.add((run_id, batch))
            fresh = [c for c in chunks if (c.run_id, c.batch) not in stored]
            if not fresh:
                return
            await db.insert_rows(
                "metric_chunks",
                ("run_id", "key", "count", "steps", "vals", "times"),
                [(c.run_id, c.key, c.count, c.steps, c.values, c.timestamps) for c in fresh],
            )
            await db.executemany(
                """INSERT INTO metric_summary AS s
                   (run_id, key, last_value, last_step, last_time, min_value, max_value, count)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id, key) DO UPDATE SET
                     last_value = CASE WHEN excluded.last_step >= s.last_step
                                  THEN excluded.last_value ELSE s.last_value END,
                     last_time = CASE WHEN excluded.last_step >= s.last_step
                                 THEN excluded.last_time ELSE s.last_time END,
                     last_step = CASE WHEN excluded.last_step >= s.last_step
                                 THEN excluded.last_step ELSE s.last_step END,
                     min_value = CASE WHEN s.min_value IS NULL OR excluded.min_value < s.min_value
                                 THEN excluded.min_value ELSE s.min_value END,
                     max_value = CASE WHEN s.max_value IS NULL OR excluded.max_value > s.max_value
                                 THEN excluded.max_value ELSE s.max_value END,
                     count = s.count + excluded.count""",
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
                    for c in fresh
                ],
            )

        await self._transact(body)

    async def add_artifact(self, record: ArtifactRecord) -> None:
        """Record an artifact (replacing one of the same name)."""

        async def body(db: Tx) -> None:
            await self._require_run(db, record.run_id)
            await db.execute(
                "INSERT INTO artifacts (run_id, name, content_type, serializer, size, sha256,"
                " uri, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, name) DO UPDATE SET content_type = excluded.content_type,"
                " serializer = excluded.serializer, size = excluded.size,"
                " sha256 = excluded.sha256, uri = excluded.uri, created_at = excluded.created_at",
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

    def _listing(self, sql: str) -> str:
        """A run listing's SQL, carrying its runs' tags and metrics if the backend says so.

        The outer query is a plain projection of the listing, so it keeps the listing's
        order, and its per-run subqueries run on the listed rows only.
        """
        if self.LISTING_EXTRAS is None:
            return sql
        return f"SELECT p.*, {self.LISTING_EXTRAS} FROM ({sql}) p"

    async def _run_infos(self, db: Tx, found: Sequence[Row]) -> list[RunInfo]:
        """``RunInfo`` of rows of ``_listing``: experiment names, tags and latest metrics."""
        names = self._experiment_names
        missing = list({r[1] for r in found} - names.keys())
        if missing:
            marks = ",".join("?" * len(missing))
            sql = f"SELECT id, name FROM experiments WHERE id IN ({marks})"
            names.update((i, n) for i, n in await db.fetchall(sql, missing))
        if self.LISTING_EXTRAS is None:
            tags, metrics = await self._run_extras(db, [r[0] for r in found])
        else:
            tags = {r[0]: dict(sorted(r[-2])) for r in found}  # by key, as on every backend
            metrics = {r[0]: dict(sorted(r[-1])) for r in found}
        return rows.run_infos_from_rows(found, names, tags, metrics)

    async def _run_extras(
        self, db: Tx, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, float | None]]]:
        tags: dict[str, dict[str, str]] = {rid: {} for rid in ids}
        for batch in rows.in_batches(ids):
            marks = ",".join("?" * len(batch))
            for rid, key, tag in await db.fetchall(
                f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", batch
            ):
                tags[rid][key] = tag
        return tags, await rows.latest_metrics(db, ids)

    async def get_run(self, run_id: str) -> Run:
        """Everything stored about one run."""
        now = time.time()

        async def body(db: Tx) -> Run:
            found = await db.fetchall(self._listing(RUN_SELECT + " WHERE r.id = ?"), (now, run_id))
            if not found:
                raise NotFound(f"run {run_id!r} not found")
            (info,) = await self._run_infos(db, found)
            params = await db.fetchall(
                "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)
            )
            summaries = await db.fetchall(
                "SELECT key, last_value, last_step, last_time, min_value, max_value, count"
                " FROM metric_summary WHERE run_id = ? ORDER BY key",
                (run_id,),
            )
            (note, note_by, note_at, environment), *_ = await db.fetchall(
                "SELECT note, note_by, note_at, environment FROM runs WHERE id = ?", (run_id,)
            )
            tag_by = await db.fetchall(
                "SELECT key, set_by FROM tags WHERE run_id = ? AND set_by IS NOT NULL",
                (run_id,),
            )
            datasets = await db.fetchall(
                "SELECT role, name, n_rows, n_cols, features, source, digest, extra"
                " FROM datasets WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
            artifacts = await self._list_artifacts(db, run_id)
            children = await db.fetchall(
                "SELECT id FROM runs WHERE parent_id = ? ORDER BY started_at", (run_id,)
            )
            return Run(
                **info.model_dump(),
                params={k: rows.decode_param(v) for k, v in params},
                metric_summaries={r[0]: rows.summary_from_row(r) for r in summaries},
                note=note,
                note_by=note_by,
                tag_by={str(k): str(by) for k, by in tag_by},
                note_at=note_at,  # seconds since the epoch, validated into a datetime
                datasets=[rows.dataset_from_row(d) for d in datasets],
                artifacts=artifacts,
                environment=json.loads(environment),
                children=[c[0] for c in children],
            )

        return await self._query(body)

    async def _experiment_id(self, db: Tx, name: str) -> int | None:
        """An experiment's id by name (cached); ``None`` if there is no such experiment."""
        found = self._experiment_ids.get(name)
        if found is None:
            ids = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (name,))
            if not ids:
                return None
            found = self._experiment_ids[name] = int(ids[0][0])
            self._experiment_names[found] = name
        return found

    async def _filter(
        self, db: Tx, query: RunQuery, now: float
    ) -> tuple[str, str, list[Any]] | None:
        """A run query's JOIN and WHERE clauses and their parameters; ``None`` if none match."""
        where: list[str] = []
        params: list[Any] = []
        join = ""
        experiment_id = None
        if query.experiment is not None:
            experiment_id = await self._experiment_id(db, query.experiment)
            if experiment_id is None:
                return None
        if query.order_by_metric is not None:
            join = " JOIN metric_summary ms ON ms.run_id = r.id AND ms.key = ?"
            params.append(query.order_by_metric)
            if (
                experiment_id is not None
            ):  # the run's: lets the (key, experiment, value) index drive
                join += " AND ms.experiment_id = ?"
                params.append(experiment_id)
            where.append("ms.last_value IS NOT NULL")
        elif experiment_id is not None:
            where.append("r.experiment_id = ?")
            params.append(experiment_id)
        if query.only_archived:
            where.append("r.archived = 1")
        elif not query.include_archived:
            where.append("r.archived = 0")
        if query.status == "killed":
            where.append(
                "(r.status = 'killed' OR (r.status = 'running'"
                " AND r.heartbeat_at + r.heartbeat_timeout < ?))"
            )
            params.append(now)
        elif query.status == "running":
            where.append("r.status = 'running' AND r.heartbeat_at + r.heartbeat_timeout >= ?")
            params.append(now)
        elif query.status is not None:
            where.append("r.status = ?")
            params.append(query.status)
        for column, value in (
            ("r.created_by = ?", query.created_by),
            ("r.started_at >= ?", query.since and query.since.timestamp()),
            ("r.started_at < ?", query.until and query.until.timestamp()),
            ("r.parent_id = ?", query.parent_id),
        ):
            if value is not None:
                where.append(column)
                params.append(value)
        for cond in query.metric_conditions:
            op = OP_SQL[cond.op]
            if cond.key == query.order_by_metric:
                where.append(f"ms.last_value {op} ?")
                params.append(cond.value)
            else:
                where.append(
                    "EXISTS (SELECT 1 FROM metric_summary m WHERE m.run_id = r.id"
                    f" AND m.key = ? AND m.last_value {op} ?)"
                )
                params += [cond.key, cond.value]
        for key, value in query.params.items():
            where.append(
                "EXISTS (SELECT 1 FROM params p"
                " WHERE p.run_id = r.id AND p.key = ? AND p.value = ?)"
            )
            params += [key, rows.encode_param(value)]
        for key, tag in query.tags.items():
            where.append(
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.id AND t.key = ? AND t.value = ?)"
            )
            params += [key, tag]
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        return join, clause, params

    async def _select_rows(self, db: Tx, query: RunQuery) -> list[Row]:
        """Rows of ``RUN_COLUMNS``; ordered by a metric, then also its latest value and step."""
        now = time.time()
        clauses = await self._filter(db, query, now)
        if clauses is None:
            return []
        join, clause, params = clauses
        select = RUN_SELECT
        if query.order_by_metric is not None:
            direction = "DESC" if query.direction == "max" else "ASC"
            order = f" ORDER BY ms.last_value {direction}, ms.run_id {direction}"
            select = RUN_SELECT.replace(
                " FROM runs r", ", ms.last_value, ms.last_step FROM runs r", 1
            )
        else:
            order = " ORDER BY " + RUN_ORDER_SQL[query.order_by].format(
                d="DESC" if query.direction == "max" else "ASC"
            )
        page = ""
        if query.limit is not None or query.offset:
            # literals, not parameters: with LIMIT 1 in its text a prepared statement has a
            # generic plan as good as a custom one, so PostgreSQL stops planning it per call
            limit = int(query.limit if query.limit is not None else ALL_ROWS)
            page = f" LIMIT {limit} OFFSET {int(query.offset)}"
        return await db.fetchall(
            self._listing(select + join + clause + order + page), [now, *params]
        )

    async def _select_runs(self, db: Tx, query: RunQuery) -> list[RunInfo]:
        return await self._run_infos(db, await self._select_rows(db, query))

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching a query."""
        return await self._query(lambda db: self._select_runs(db, query))

    async def best_run(self, query: RunQuery) -> BestRun | None:
        """The first run of a query ordered by a metric, with that metric's latest value."""
        key = query.order_by_metric
        if key is None:
            raise InvalidInput("best_run needs a query ordered by a metric")
        first = query.model_copy(update={"limit": 1, "offset": 0})

        async def body(db: Tx) -> BestRun | None:
            found = await self._select_rows(db, first)
            if not found:
                return None
            # as ranked, whatever was logged since: the columns after RUN_COLUMNS
            value, step = found[0][rows.RUN_COLUMN_COUNT : rows.RUN_COLUMN_COUNT + 2]
            return BestRun(
                run=(await self._run_infos(db, found))[0],
                metric=key,
                value=value,
                step=step,
                direction=query.direction,
            )

        return await self._query(body)

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match, ignoring limit and offset."""

        async def body(db: Tx) -> int:
            clauses = await self._filter(db, query, time.time())
            if clauses is None:
                return 0
            join, clause, params = clauses
            ((count,),) = await db.fetchall("SELECT count(*) FROM runs r" + join + clause, params)
            return int(count)

        return await self._query(body)

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs."""

        async def body(db: Tx) -> dict[str, dict[str, ParamValue]]:
            out: dict[str, dict[str, ParamValue]] = {rid: {} for rid in run_ids}
            for batch in rows.in_batches(list(run_ids)):
                marks = ",".join("?" * len(batch))
                for rid, key, value in await db.fetchall(
                    f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks}) ORDER BY key",
                    batch,
                ):
                    out[rid][key] = rows.decode_param(value)
            return out

        return await self._query(body)

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Each metric's summary for one run."""

        async def body(db: Tx) -> list[Row]:
            await self._require_run(db, run_id)
            return await db.fetchall(
                "SELECT key, last_value, last_step, last_time, min_value, max_value, count"
                " FROM metric_summary WHERE run_id = ? ORDER BY key",
                (run_id,),
            )

        return {r[0]: rows.summary_from_row(r) for r in await self._query(body)}

    async def metric_history(self, run_id: str, key: str) -> MetricSeries:
        """All points of one metric."""

        async def body(db: Tx) -> tuple[list[Row], list[Row]]:
            await self._require_run(db, run_id)
            chunks = await db.fetchall(
                "SELECT steps, vals, times FROM metric_chunks WHERE run_id = ? AND key = ?"
                " ORDER BY id",
                (run_id, key),
            )
            if chunks:
                return chunks, []
            keys = await db.fetchall(
                "SELECT key FROM metric_summary WHERE run_id = ? ORDER BY key", (run_id,)
            )
            return chunks, keys

        chunks, keys = await self._query(body)
        if not chunks:
            logged = ", ".join(k[0] for k in keys) or "none"
            raise NotFound(f"run {run_id!r} has no metric {key!r} (logged metrics: {logged})")
        return rows.series_from_chunks(run_id, key, chunks)

    async def _list_artifacts(self, db: Tx, run_id: str) -> list[Artifact]:
        found = await db.fetchall(
            "SELECT name, content_type, serializer, size, sha256, uri, created_at"
            " FROM artifacts WHERE run_id = ? ORDER BY name",
            (run_id,),
        )
        return [rows.artifact_from_row(r) for r in found]

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact, or ``NotFound`` listing what the run has."""
        arts = await self.list_artifacts(run_id)
        for art in arts:
            if art.name == name:
                return art
        names = ", ".join(a.name for a in arts) or "none"
        raise NotFound(f"run {run_id!r} has no artifact {name!r} (its artifacts: {names})")

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """A run's artifacts."""

        async def body(db: Tx) -> list[Artifact]:
            await self._require_run(db, run_id)
            return await self._list_artifacts(db, run_id)

        return await self._query(body)

    # cleanup

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

        return await self._transact(body)

    async def unused_uris(self, uris: Sequence[str]) -> list[str]:
        """Those of ``uris`` that no artifact row or model version references right now.

        The file sweep after :meth:`delete_archived` asks again right before deleting each
        file: another run may have logged the same bytes (the same object) since.
        """

        async def body(db: Tx) -> list[str]:
            unused: list[str] = []
            for uri in uris:
                still = await db.fetchall(
                    "SELECT 1 FROM artifacts WHERE uri = ?"
                    " UNION ALL SELECT 1 FROM model_versions WHERE artifact_uri = ?",
                    (uri, uri),
                )
                if not still:
                    unused.append(uri)
            return unused

        return await self._query(body)

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
            orphaned: list[str] = []
            for (uri,) in uris:
                still = await db.fetchall(  # another run's artifact, or a model version's file
                    "SELECT 1 FROM artifacts WHERE uri = ?"
                    " UNION ALL SELECT 1 FROM model_versions WHERE artifact_uri = ?",
                    (uri, uri),
                )
                if not still:
                    orphaned.append(uri)
            return deleted, orphaned

        return await self._transact(body)
