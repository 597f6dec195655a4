"""Reading runs: one run in full, filtered and ordered listings, ``best_run`` and counts.

A run's status is computed at query time (a ``running`` run whose heartbeat stopped reads as
``killed``, filters included). Experiment names and ids are read as stored at the time of the
query (an experiment can be renamed by any replica sharing the database), never cached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import BestRun, Dataset, Run, RunInfo, RunQuery, to_datetime
from chachaml.store.sql.artifacts import Artifacts
from chachaml.store.sql.database import Database, Row, Tx, columns
from chachaml.store.sql.experiments import Experiments
from chachaml.store.sql.metrics import Metrics, latest_metrics
from chachaml.store.sql.rows import (
    ALL_ROWS,
    decode_param,
    encode_param,
    in_batches,
    marks,
    param_text_encodings,
    stop_from_row,
)

STATUS_SQL = (
    "CASE WHEN r.status = 'running' AND r.heartbeat_at + r.heartbeat_timeout < ? "
    "THEN 'killed' ELSE r.status END"
)
# The first parameter of every RUN_SELECT query is "now", for the computed status. Runs are
# selected from their own table alone and named from the listed rows (LISTING_EXTRAS on
# PostgreSQL, one more statement on SQLite): a join in the inner query would cost
# PostgreSQL's planner half its time for best_run.
RUN_SELECT = (
    "SELECT r.id, r.experiment_id, r.name, "
    + STATUS_SQL
    + " AS status, r.created_by, r.started_at, r.ended_at, r.error, r.parent_id, r.archived"
    " FROM runs r"
)
# ORDER BY of each run field, ties broken newest first. Runs without a name, or still
# running (no duration), come last either way; ``status`` is the computed status column.
RUN_ORDER_SQL = {
    "started": "r.started_at {d}, r.id {d}",
    "name": "r.name IS NULL, r.name {d}, r.started_at DESC, r.id DESC",
    "experiment": "(SELECT e.name FROM experiments e WHERE e.id = r.experiment_id) {d},"
    " r.started_at DESC, r.id DESC",
    "status": "status {d}, r.started_at DESC, r.id DESC",
    "user": "r.created_by {d}, r.started_at DESC, r.id DESC",
    "duration": "r.ended_at IS NULL, r.ended_at - r.started_at {d}, r.started_at DESC, r.id DESC",
}


def _numeric(value: str) -> str:
    """Whether a param's JSON (in the column ``value``) reads as a number.

    The length bound keeps a huge integer from overflowing PostgreSQL's cast to DOUBLE
    PRECISION (a type name both dialects know).
    """
    return (
        f"(substr({value}, 1, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')"
        f" AND {value} <> '-Infinity' AND length({value}) <= 30)"
    )


def param_kind_sql(value: str = "ps.value") -> str:
    """0 for a param that is a number, 1 for text: numbers sort first, either way."""
    return f"(CASE WHEN {_numeric(value)} THEN 0 ELSE 1 END)"


def param_number_sql(value: str = "ps.value") -> str:
    """A numeric param's value as a number (NULL for text)."""
    return f"(CASE WHEN {_numeric(value)} THEN CAST({value} AS DOUBLE PRECISION) END)"


# Runs ordered by a param: numbers in numeric order, then text, ties newest first. Each kind
# is read on its own (``kind = 0``, then ``kind = 1``) from the params_order index, on
# (key, kind, number, value) with these very expressions, in the order asked (forwards or
# backwards), and stops once the page is full: a page costs its rows (and its ties), not a
# sort of every run with the param (1.2 s at 100,000 runs). One ORDER BY over both kinds
# would read the index in two directions at once (numbers first, largest first), which
# neither SQLite nor PostgreSQL does.
PARAM_LEG_ORDER = f"{param_number_sql()} {{d}}, ps.value {{d}}, r.started_at DESC, r.id DESC"
PARAM_ORDER = "param_kind, param_number {d}, param_text {d}, started_at DESC, id DESC"
EXPERIMENT_ID_SQL = "(SELECT e.id FROM experiments e WHERE e.name = ?)"
NAME_TAG = "mlflow.runName"  # an unnamed run's name, as MLflow's clients set it
PARENT_TAG = "mlflow.parentRunId"  # a parent the import left behind (chachaml.tools.mlflow_import)
OP_SQL = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "="}
# Select-list columns over a listing's rows as ``p`` that carry each run's tags and latest
# metrics as arrays of (key, value), and its experiment's name as stored at the time of the
# query, in the listing's own statement: one network round trip instead of three. SQLite
# reads them in three more statements, which costs an embedded database nothing (a name
# subquery in SQLite's listing would run on every row a sort reads: 0.7 ms -> 26 ms for a
# param sort over 10,000 runs).
EXPERIMENT_NAME_SQL = (
    "(SELECT e.name FROM experiments e WHERE e.id = p.experiment_id) AS experiment_name"
)
LISTING_EXTRAS = {
    "postgresql": (
        "ARRAY(SELECT ROW(t.key, t.value) FROM tags t WHERE t.run_id = p.id) AS tag_pairs,"
        " ARRAY(SELECT ROW(m.key, m.last_value) FROM metric_summary m WHERE m.run_id = p.id)"
        f" AS metric_pairs, {EXPERIMENT_NAME_SQL}"
    ),
}


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern for ``LIKE ... ESCAPE '!'`` (wildcards literal)."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


_RUN_INFOS: TypeAdapter[list[RunInfo]] = TypeAdapter(list[RunInfo])


def run_infos_from_rows(
    found: Sequence[Row],
    c: Mapping[str, int],
    experiments: Mapping[int, str],
    tags: Mapping[str, dict[str, str]],
    metrics: Mapping[str, dict[str, float | None]],
) -> list[RunInfo]:
    """``RunInfo`` of rows of ``RUN_SELECT`` with experiment names (by id), tags and metrics.

    ``c`` is the rows' :func:`~chachaml.store.sql.database.columns`. Tags and metrics are keyed
    by run id. The rows are validated as one list, which costs a third less than run by run.
    """
    return _RUN_INFOS.validate_python(
        [
            {
                "id": row[c["id"]],
                "experiment": experiments[row[c["experiment_id"]]],
                "name": row[c["name"]],
                "status": row[c["status"]],
                "created_by": row[c["created_by"]],
                "started_at": to_datetime(row[c["started_at"]]),
                "ended_at": to_datetime(row[c["ended_at"]]),
                "error": row[c["error"]],
                "parent_id": row[c["parent_id"]],
                "archived": bool(row[c["archived"]]),
                "tags": tags.get(row[c["id"]], {}),
                "metrics": metrics.get(row[c["id"]], {}),
            }
            for row in found
        ]
    )


def dataset_from_row(row: Row) -> Dataset:
    """A dataset from its row (features and extra are JSON text)."""
    return Dataset(
        role=row["role"],
        name=row["name"],
        n_rows=row["n_rows"],
        n_cols=row["n_cols"],
        features=json.loads(row["features"]),
        source=row["source"],
        digest=row["digest"],
        extra=json.loads(row["extra"]),
    )


def param_page_sql(join: str, clause: str, query: RunQuery) -> str:
    """A page of ``RUN_SELECT`` rows ordered by ``query.order_by_param``.

    ``join`` is the params join of :meth:`RunQueries._filter` and ``clause`` its WHERE; the
    SQL holds them twice (its parameters are the filter's, twice over). Each kind's leg reads
    at most the rows up to the end of the page, and the page is cut from the two legs.
    """
    d = "DESC" if query.direction == "max" else "ASC"
    select = RUN_SELECT.replace(
        " FROM runs r",
        f", {param_kind_sql()} AS param_kind, {param_number_sql()} AS param_number,"
        " ps.value AS param_text FROM runs r",
        1,
    )
    end = None if query.limit is None else min(query.limit + query.offset, ALL_ROWS)
    upto = "" if end is None else f" LIMIT {int(end)}"
    legs = [
        f"SELECT * FROM ({select}{join} AND {param_kind_sql()} = {kind}{clause}"
        f" ORDER BY {PARAM_LEG_ORDER.format(d=d)}{upto}) kind_{kind}"
        for kind in (0, 1)
    ]
    return " UNION ALL ".join(legs) + " ORDER BY " + PARAM_ORDER.format(d=d) + page_sql(query)


def page_sql(query: RunQuery) -> str:
    """A listing's LIMIT and OFFSET, if it has them.

    Literals, not parameters: with LIMIT 1 in its text a prepared statement has a generic
    plan as good as a custom one, so PostgreSQL stops planning it per call.
    """
    if query.limit is None and not query.offset:
        return ""
    limit = int(query.limit if query.limit is not None else ALL_ROWS)
    return f" LIMIT {limit} OFFSET {int(query.offset)}"


class RunQueries:
    """Run reads."""

    def __init__(self, database: Database, experiments: Experiments) -> None:
        self._db = database
        self._experiments = experiments
        self._extras = LISTING_EXTRAS.get(database.dialect)

    def _listing(self, sql: str) -> str:
        """A run listing's SQL, carrying its runs' tags and metrics if the backend says so.

        The outer query is a plain projection of the listing, so it keeps the listing's
        order, and its per-run subqueries run on the listed rows only.
        """
        if self._extras is None:
            return sql
        return f"SELECT p.*, {self._extras} FROM ({sql}) p"

    async def run_infos(self, db: Tx, found: Sequence[Row]) -> list[RunInfo]:
        """``RunInfo`` of rows of ``_listing``: experiment names, tags and latest metrics."""
        c = columns(found)
        if self._extras is None:
            names = await self._experiments.names(db, [r[c["experiment_id"]] for r in found])
            tags, metrics = await self._run_extras(db, [r[c["id"]] for r in found])
        else:  # by key, as on every backend
            names = {r[c["experiment_id"]]: r[c["experiment_name"]] for r in found}
            tags = {r[c["id"]]: dict(sorted(r[c["tag_pairs"]])) for r in found}
            metrics = {r[c["id"]]: dict(sorted(r[c["metric_pairs"]])) for r in found}
        return run_infos_from_rows(found, c, names, tags, metrics)

    @staticmethod
    async def _run_extras(
        db: Tx, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, float | None]]]:
        tags: dict[str, dict[str, str]] = {rid: {} for rid in ids}
        for batch in in_batches(ids):
            for rid, key, tag in await db.fetchall(
                f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks(batch)})", batch
            ):
                tags[rid][key] = tag
        return tags, await latest_metrics(db, ids)

    async def get_run(self, run_id: str) -> Run:
        """Everything stored about one run."""
        now = time.time()

        async def body(db: Tx) -> Run:
            found = await db.fetchall(self._listing(RUN_SELECT + " WHERE r.id = ?"), (now, run_id))
            if not found:
                raise NotFound(f"run {run_id!r} not found")
            (info,) = await self.run_infos(db, found)
            params = await db.fetchall(
                "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)
            )
            (extra,) = await db.fetchall(
                "SELECT id, note, note_by, note_at, environment, heartbeat_at, heartbeat_timeout,"
                " stop_requested_at, stop_requested_by, stop_reason FROM runs WHERE id = ?",
                (run_id,),
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
            children = await db.fetchall(
                "SELECT id FROM runs WHERE parent_id = ? ORDER BY started_at", (run_id,)
            )
            return Run(
                **info.model_dump(),
                params={p["key"]: decode_param(p["value"]) for p in params},
                metric_summaries=await Metrics.summaries_in(db, run_id),
                note=extra["note"],
                note_by=extra["note_by"],
                tag_by={str(t["key"]): str(t["set_by"]) for t in tag_by},
                note_at=extra["note_at"],  # seconds since the epoch, validated into a datetime
                datasets=[dataset_from_row(d) for d in datasets],
                artifacts=await Artifacts.of_run(db, run_id),
                environment=json.loads(extra["environment"]),
                children=[c["id"] for c in children],
                heartbeat_at=extra["heartbeat_at"],
                heartbeat_timeout=extra["heartbeat_timeout"],
                stop_request=None if extra["stop_requested_at"] is None else stop_from_row(extra),
            )

        return await self._db.query(body)

    async def _filter(
        self, db: Tx, query: RunQuery, now: float, *, counting: bool = False
    ) -> tuple[str, str, list[Any]] | None:
        """A run query's JOIN and WHERE clauses and their parameters; ``None`` if none match.

        ``counting``: for ``count_runs``, which reads top-level runs from their index.
        """
        where: list[str] = []
        params: list[Any] = []
        join, join_params = "", list[Any]()  # the JOIN's parameters come first in the SQL
        # the experiment's id, as SQL: read by name inside the statement (no round trip, and
        # never stale: another replica may have renamed an experiment a moment ago)
        experiment_id: tuple[str, Any] | None = None
        if query.experiment is not None:
            experiment_id = (EXPERIMENT_ID_SQL, query.experiment)
        if query.experiment_contains is not None:  # an exact name wins (a picked name)
            exact = await self._experiments.id_of(db, query.experiment_contains)
            if (
                exact is not None
                and query.experiment is not None
                and await self._experiments.id_of(db, query.experiment) != exact
            ):
                return None
            if exact is not None:
                experiment_id = ("?", exact)
            else:
                where.append(
                    "r.experiment_id IN (SELECT e.id FROM experiments e"
                    " WHERE lower(e.name) LIKE ? ESCAPE '!')"
                )
                params.append(like_pattern(query.experiment_contains))
        if query.order_by_metric is not None:
            join = " JOIN metric_summary ms ON ms.run_id = r.id AND ms.key = ?"
            join_params.append(query.order_by_metric)
            if experiment_id is not None:  # lets the (key, experiment, value) index drive
                join += f" AND ms.experiment_id = {experiment_id[0]}"
                join_params.append(experiment_id[1])
            where.append("ms.last_value IS NOT NULL")
        elif query.order_by_param is not None and counting:
            # runs in their own index's order, each looked up in params by its key: 10 ms to
            # count 10,000 of 100,000 runs; joined, SQLite reads params in value order and
            # each run at random (65-180 ms, on the loaded 2-core machine)
            where.append("EXISTS (SELECT 1 FROM params ps WHERE ps.run_id = r.id AND ps.key = ?)")
            params.append(query.order_by_param)
        elif query.order_by_param is not None:
            join = " JOIN params ps ON ps.run_id = r.id AND ps.key = ?"
            join_params.append(query.order_by_param)
        if experiment_id is not None and query.order_by_metric is None:
            where.append(f"r.experiment_id = {experiment_id[0]}")
            params.append(experiment_id[1])
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
        if query.parent_ids:
            where.append(f"r.parent_id IN ({marks(query.parent_ids)})")
            params += query.parent_ids
        if query.experiments:
            where.append(
                "r.experiment_id IN (SELECT e.id FROM experiments e"
                f" WHERE e.name IN ({marks(query.experiments)}))"
            )
            params += query.experiments
        if query.run_ids:
            where.append(f"r.id IN ({marks(query.run_ids)})")
            params += query.run_ids
        if query.names:
            listed = marks(query.names)
            where.append(
                f"(r.name IN ({listed}) OR (r.name IS NULL AND EXISTS (SELECT 1 FROM tags t"
                f" WHERE t.run_id = r.id AND t.key = ? AND t.value IN ({listed}))))"
            )
            params += [*query.names, NAME_TAG, *query.names]
        if query.parent_ref is not None:
            where.append(
                "(r.parent_id = ? OR (r.parent_id IS NULL AND EXISTS (SELECT 1 FROM tags t"
                " WHERE t.run_id = r.id AND t.key = ? AND t.value = ?)))"
            )
            params += [query.parent_ref, PARENT_TAG, query.parent_ref]
        if query.top_level and (counting or query.order_by == "started"):
            where.append("r.parent_id IS NULL")  # runs_top_started: in order, or to count
        elif query.top_level:
            # the same test, worded so that a full sort (by name, duration...) reads the table
            # in one scan rather than row by row through the partial index (twice as slow)
            where.append("coalesce(r.parent_id, '') = ''")
        if query.name_contains is not None:
            where.append("lower(r.name) LIKE ? ESCAPE '!'")
            params.append(like_pattern(query.name_contains))
        if query.id_prefix is not None:
            # substr, not LIKE: ids may hold "_", and a collation may order a range oddly
            where.append("substr(r.id, 1, ?) = ?")
            params += [len(query.id_prefix), query.id_prefix]
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
            params += [key, encode_param(value)]
        for key, text in query.param_texts.items():
            stored = param_text_encodings(text)
            where.append(
                "EXISTS (SELECT 1 FROM params p"
                f" WHERE p.run_id = r.id AND p.key = ? AND p.value IN ({marks(stored)}))"
            )
            params += [key, *stored]
        for key, tag in query.tags.items():
            where.append(
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.id AND t.key = ? AND t.value = ?)"
            )
            params += [key, tag]
        if query.without_metric is not None:
            where.append(
                "NOT EXISTS (SELECT 1 FROM metric_summary m WHERE m.run_id = r.id"
                " AND m.key = ? AND m.last_value IS NOT NULL)"
            )
            params.append(query.without_metric)
        if query.without_param is not None:
            where.append("NOT EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = ?)")
            params.append(query.without_param)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        return join, clause, join_params + params

    async def _select_rows(self, db: Tx, query: RunQuery) -> list[Row]:
        """Rows of ``RUN_SELECT``; ordered by a metric, with ``best_value`` and ``best_step``."""
        now = time.time()
        clauses = await self._filter(db, query, now)
        if clauses is None:
            return []
        join, clause, params = clauses
        if query.order_by_param is not None and query.order_by_metric is None:
            sql = param_page_sql(join, clause, query)
            return await db.fetchall(self._listing(sql), [now, *params] * 2)
        select = RUN_SELECT
        if query.order_by_metric is not None:
            direction = "DESC" if query.direction == "max" else "ASC"
            order = f" ORDER BY ms.last_value {direction}, ms.run_id {direction}"
            select = RUN_SELECT.replace(
                " FROM runs r",
                ", ms.last_value AS best_value, ms.last_step AS best_step FROM runs r",
                1,
            )
        else:
            order = " ORDER BY " + RUN_ORDER_SQL[query.order_by].format(
                d="DESC" if query.direction == "max" else "ASC"
            )
        return await db.fetchall(
            self._listing(select + join + clause + order + page_sql(query)), [now, *params]
        )

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching a query."""

        async def body(db: Tx) -> list[RunInfo]:
            return await self.run_infos(db, await self._select_rows(db, query))

        return await self._db.query(body)

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
            return BestRun(  # value and step as ranked, whatever was logged since
                run=(await self.run_infos(db, found))[0],
                metric=key,
                value=found[0]["best_value"],
                step=found[0]["best_step"],
                direction=query.direction,
            )

        return await self._db.query(body)

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match, ignoring limit and offset."""

        async def body(db: Tx) -> int:
            clauses = await self._filter(db, query, time.time(), counting=True)
            if clauses is None:
                return 0
            join, clause, params = clauses
            sql = "SELECT count(*) AS n FROM runs r" + join + clause
            if query.count_up_to is not None:
                sql = f"SELECT count(*) AS n FROM (SELECT 1 AS one FROM runs r{join}{clause}"
                sql += f" LIMIT {int(query.count_up_to)}) capped"
            found = await db.fetchall(sql, params)
            return int(found[0]["n"])

        return await self._db.query(body)

    async def child_counts(self, parent_ids: Sequence[str]) -> dict[str, int]:
        """How many unarchived child runs each of these runs has (runs without any: absent)."""

        async def body(db: Tx) -> dict[str, int]:
            out: dict[str, int] = {}
            for batch in in_batches(list(dict.fromkeys(parent_ids))):
                found = await db.fetchall(
                    "SELECT parent_id, count(*) AS n FROM runs"
                    f" WHERE parent_id IN ({marks(batch)}) AND archived = 0 GROUP BY parent_id",
                    batch,
                )
                out.update((str(row[0]), int(row[1])) for row in found)
            return out

        return await self._db.query(body)
