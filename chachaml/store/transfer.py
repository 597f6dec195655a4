"""Copying one store into another (``chachaml migrate``), resumable and verified.

The unit of copying is a run (with its params, tags, metric chunks and summaries, datasets
and artifact records), then a model (with its versions, aliases, tags and audit trail), then
a pipeline (with its steps), then an alert rule (with its events): each is written in one
target transaction and skipped when the target already has it, so an interrupted migration
resumes without duplicating rows. Experiments, models and alerts are matched by name, so ids
may differ between the stores. At the end every copied run, model, pipeline and alert is
counted again on both sides.

Rows are copied as they are stored, through each store's
:class:`~chachaml.store.sql.database.Database` (PostgreSQL ingests child rows with COPY);
the objects an artifact root holds are copied by :mod:`chachaml.store.artifacts.transfer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chachaml.errors import Conflict, InvalidInput
from chachaml.store.sql.database import Row, Tx, fetch
from chachaml.store.sql.store import SQLStore

RUN_COLUMNS = (
    "id, name, status, created_by, started_at, ended_at, heartbeat_at, heartbeat_timeout,"
    " error, parent_id, archived, note, note_by, note_at, environment, stop_requested_at,"
    " stop_requested_by, stop_reason"
)
# Per-run child tables: (table, columns copied, ORDER BY)
RUN_CHILDREN: tuple[tuple[str, str, str], ...] = (
    ("params", "key, value", "key"),
    ("tags", "key, value, set_by, set_at", "key"),
    (
        "metric_chunks",
        "key, count, format, steps, vals, times, min_step, max_step, in_order, outline",
        "id",
    ),
    (
        "metric_summary",
        "key, last_value, last_step, last_time, min_value, max_value, count",
        "key",
    ),
    ("datasets", "role, name, n_rows, n_cols, features, source, digest, extra", "id"),
    ("artifacts", "name, content_type, serializer, size, sha256, uri, created_at", "name"),
)
VERSION_COLUMNS = (
    "version, run_id, artifact, artifact_uri, sha256, serializer, content_type, size, stage,"
    " description, created_by, created_at, stage_changed_at"
)
MODEL_CHILDREN: tuple[tuple[str, str, str], ...] = (
    ("model_versions", VERSION_COLUMNS, "version"),
    ("model_aliases", "alias, version, updated_by, updated_at", "alias"),
    ("model_tags", "key, value", "key"),
    ("model_version_tags", "version, key, value", "version, key"),
    (
        "model_events",
        "kind, version, alias, old_value, new_value, changed_by, at, reason",
        "id",
    ),
)
PIPELINE_COLUMNS = (
    "id, name, description, run_id, status, created_by, started_at, ended_at, error,"
    " max_parallel, resumes"
)
STEP_COLUMNS = (
    "name, position, depends_on, target, retries, backoff, timeout, status, started_at,"
    " ended_at, error, attempts, run_id, result"
)
ALERT_COLUMNS = (
    "name, kind, experiment, metric_key, op, threshold, drop_pct, baseline_model,"
    " baseline_runs, window_seconds, cooldown_seconds, webhook_url, secret, muted, created_by,"
    " created_at, updated_at, last_fired_at"
)
ALERT_EVENT_COLUMNS = (
    "subject, run_id, experiment, value, threshold, baseline, message, fired_at, delivery, attempts"
)

Progress = Callable[[str, int, int], None]


@dataclass
class MigrationReport:
    """What a migration did: rows per table written now, and what was already there."""

    copied: dict[str, int] = field(default_factory=dict)
    skipped_runs: int = 0
    skipped_models: int = 0
    skipped_pipelines: int = 0
    skipped_alerts: int = 0

    def add(self, table: str, n: int) -> None:
        """Count ``n`` rows written to ``table``."""
        self.copied[table] = self.copied.get(table, 0) + n


def _names(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",")]


def _values(row: Row, columns: str) -> list[Any]:
    """A row's values of ``columns``, by name, in their order."""
    return [row[c] for c in _names(columns)]


def _insert_sql(table: str, columns: str) -> str:
    marks = ", ".join("?" * len(_names(columns)))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


async def _count(db: Tx, sql: str, params: Sequence[Any] = ()) -> int:
    """The ``n`` a ``SELECT count(*) AS n`` query answers."""
    (found,) = await db.fetchall(sql, params)
    return int(found["n"])


async def is_empty(store: SQLStore) -> bool:
    """Whether a store holds no experiments, runs, models or alerts."""

    async def read(db: Tx) -> bool:
        for table in ("experiments", "runs", "models", "alerts"):
            if await _count(db, f"SELECT count(*) AS n FROM {table}"):
                return False
        return True

    return await store.database.query(read)


async def migrate(
    source: SQLStore,
    target: SQLStore,
    *,
    merge: bool = False,
    progress: Progress | None = None,
    batch: int = 200,
) -> MigrationReport:
    """Copy everything in ``source`` into ``target``; see the module docstring.

    A target that already holds data is refused unless ``merge`` is true, or unless it is
    the same migration resuming (every run and model it holds also exists in the source).
    """
    if not merge and not await is_empty(target) and not await _is_resume(source, target):
        raise Conflict(
            "the target store is not empty; pass merge=True (--merge) to copy into it anyway"
        )
    report = MigrationReport()
    await _copy_experiments(source, target, report)

    async def names(db: Tx) -> list[list[str]]:
        return [
            [r["key"] for r in await db.fetchall(sql)]
            for sql in (
                "SELECT id AS key FROM runs ORDER BY started_at, id",
                "SELECT name AS key FROM models ORDER BY id",
                "SELECT id AS key FROM pipelines ORDER BY started_at, id",
                "SELECT name AS key FROM alerts ORDER BY id",
            )
        ]

    run_ids, model_names, pipeline_ids, alert_names = await source.database.query(names)
    for start in range(0, len(run_ids), batch):
        for run_id in run_ids[start : start + batch]:
            if not await _copy_run(source, target, run_id, report):
                report.skipped_runs += 1
        if progress:
            progress("runs", min(start + batch, len(run_ids)), len(run_ids))
    await _link_parents(source, target, run_ids)
    for i, name in enumerate(model_names, 1):
        if not await _copy_model(source, target, name, report):
            report.skipped_models += 1
        if progress:
            progress("models", i, len(model_names))
    for i, pipeline_id in enumerate(pipeline_ids, 1):
        if not await _copy_pipeline(source, target, pipeline_id, report):
            report.skipped_pipelines += 1
        if progress:
            progress("pipelines", i, len(pipeline_ids))
    for i, name in enumerate(alert_names, 1):
        if not await _copy_alert(source, target, name, report):
            report.skipped_alerts += 1
        if progress:
            progress("alerts", i, len(alert_names))
    await verify(source, target, run_ids, model_names, pipeline_ids, alert_names)
    return report


async def _is_resume(source: SQLStore, target: SQLStore) -> bool:

    async def keys(db: Tx) -> list[set[str]]:
        return [
            {r["key"] for r in await db.fetchall(sql)}
            for sql in (
                "SELECT id AS key FROM runs",
                "SELECT name AS key FROM models",
                "SELECT id AS key FROM pipelines",
                "SELECT name AS key FROM alerts",
            )
        ]

    held, copied_from = await target.database.query(keys), await source.database.query(keys)
    return all(mine <= theirs for mine, theirs in zip(held, copied_from, strict=True))


async def _copy_experiments(source: SQLStore, target: SQLStore, report: MigrationReport) -> None:
    columns = "name, description, owner, created_at, archived"
    exps = await fetch(source.database, f"SELECT {columns} FROM experiments ORDER BY id")
    tags = await fetch(
        source.database,
        "SELECT e.name, t.key, t.value FROM experiment_tags t"
        " JOIN experiments e ON e.id = t.experiment_id ORDER BY e.id, t.key",
    )

    async def body(db: Tx) -> None:
        for exp in exps:
            added = await db.execute(
                _insert_sql("experiments", columns) + " ON CONFLICT (name) DO NOTHING",
                _values(exp, columns),
            )
            report.add("experiments", added)
        for name, key, value in tags:  # experiments are matched by name: ids may differ
            await db.execute(
                "INSERT INTO experiment_tags (experiment_id, key, value)"
                " SELECT id, ?, ? FROM experiments WHERE name = ? ON CONFLICT DO NOTHING",
                (key, value, name),
            )

    await target.database.transact(body)


async def _children(db: Tx, key_column: str, key: Any) -> dict[str, list[Row]]:
    tables = RUN_CHILDREN if key_column == "run_id" else MODEL_CHILDREN
    return {
        table: await db.fetchall(
            f"SELECT {columns} FROM {table} WHERE {key_column} = ? ORDER BY {order}", (key,)
        )
        for table, columns, order in tables
    }


async def _copy_run(
    source: SQLStore, target: SQLStore, run_id: str, report: MigrationReport
) -> bool:

    async def read(db: Tx) -> tuple[Row, dict[str, list[Row]]]:
        (found,) = await db.fetchall(
            f"SELECT e.name AS experiment, {', '.join('r.' + c for c in _names(RUN_COLUMNS))}"
            " FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?",
            (run_id,),
        )
        return found, await _children(db, "run_id", run_id)

    run, children = await source.database.query(read)
    values = {c: run[c] for c in _names(RUN_COLUMNS)}
    values["parent_id"] = None  # linked once every run is there

    async def body(db: Tx) -> bool:
        if await _count(db, "SELECT count(*) AS n FROM runs WHERE id = ?", (run_id,)):
            return False
        (exp,) = await db.fetchall(
            "SELECT id FROM experiments WHERE name = ?", (run["experiment"],)
        )
        await db.execute(
            _insert_sql("runs", "experiment_id, " + RUN_COLUMNS), [exp["id"], *values.values()]
        )
        for table, columns, _ in RUN_CHILDREN:
            await _insert_children(db, table, "run_id", run_id, columns, children[table], report)
        report.add("runs", 1)
        return True

    copied: bool = await target.database.transact(body)
    return copied


async def _insert_children(
    db: Tx,
    table: str,
    key_column: str,
    key: Any,
    columns: str,
    rows: Sequence[Row],
    report: MigrationReport,
) -> None:
    """Insert a parent's child rows in bulk (COPY on PostgreSQL) under the parent's new key."""
    if rows:
        await db.insert_rows(
            table, [key_column, *_names(columns)], [(key, *_values(r, columns)) for r in rows]
        )
        report.add(table, len(rows))


async def _link_parents(source: SQLStore, target: SQLStore, run_ids: Sequence[str]) -> None:
    links = await fetch(
        source.database, "SELECT id, parent_id FROM runs WHERE parent_id IS NOT NULL ORDER BY id"
    )
    wanted = set(run_ids)

    async def body(db: Tx) -> None:
        await db.executemany(
            "UPDATE runs SET parent_id = ? WHERE id = ? AND parent_id IS NULL",
            [(link["parent_id"], link["id"]) for link in links if link["id"] in wanted],
        )

    await target.database.transact(body)


async def _copy_model(
    source: SQLStore, target: SQLStore, name: str, report: MigrationReport
) -> bool:

    async def read(db: Tx) -> tuple[Row, dict[str, list[Row]]]:
        (found,) = await db.fetchall(
            "SELECT id, note, created_by, created_at, updated_at FROM models WHERE name = ?",
            (name,),
        )
        return found, await _children(db, "model_id", found["id"])

    model, children = await source.database.query(read)

    def identity(versions: Sequence[Row]) -> list[tuple[Any, ...]]:
        return [(v["version"], v["run_id"], v["sha256"]) for v in versions]

    async def body(db: Tx) -> bool:
        existing = await db.fetchall("SELECT id FROM models WHERE name = ?", (name,))
        if existing:
            versions = await db.fetchall(
                "SELECT version, run_id, sha256 FROM model_versions WHERE model_id = ?"
                " ORDER BY version",
                (existing[0]["id"],),
            )
            if identity(versions) != identity(children["model_versions"]):
                raise Conflict(
                    f"model {name!r} exists in both stores with different versions;"
                    " rename it in one of them before merging"
                )
            return False
        await db.execute(
            "INSERT INTO models (name, note, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, *_values(model, "note, created_by, created_at, updated_at")),
        )
        (new,) = await db.fetchall("SELECT id FROM models WHERE name = ?", (name,))
        for table, columns, _ in MODEL_CHILDREN:
            await _insert_children(
                db, table, "model_id", new["id"], columns, children[table], report
            )
        report.add("models", 1)
        return True

    copied: bool = await target.database.transact(body)
    return copied


async def _copy_pipeline(
    source: SQLStore, target: SQLStore, pipeline_id: str, report: MigrationReport
) -> bool:

    async def read(db: Tx) -> tuple[Row, list[Row]]:
        (pipe,) = await db.fetchall(
            f"SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = ?", (pipeline_id,)
        )
        steps = await db.fetchall(
            f"SELECT {STEP_COLUMNS} FROM pipeline_steps WHERE pipeline_id = ? ORDER BY position",
            (pipeline_id,),
        )
        return pipe, steps

    pipe, steps = await source.database.query(read)

    async def body(db: Tx) -> bool:
        if await _count(db, "SELECT count(*) AS n FROM pipelines WHERE id = ?", (pipeline_id,)):
            return False
        await db.execute(
            _insert_sql("pipelines", PIPELINE_COLUMNS), _values(pipe, PIPELINE_COLUMNS)
        )
        await db.executemany(
            _insert_sql("pipeline_steps", "pipeline_id, " + STEP_COLUMNS),
            [(pipeline_id, *_values(s, STEP_COLUMNS)) for s in steps],
        )
        report.add("pipelines", 1)
        report.add("pipeline_steps", len(steps))
        return True

    copied: bool = await target.database.transact(body)
    return copied


async def _copy_alert(
    source: SQLStore, target: SQLStore, name: str, report: MigrationReport
) -> bool:

    async def read(db: Tx) -> tuple[Row, list[Row]]:
        (found,) = await db.fetchall(
            f"SELECT id, {ALERT_COLUMNS} FROM alerts WHERE name = ?", (name,)
        )
        events = await db.fetchall(
            f"SELECT {ALERT_EVENT_COLUMNS} FROM alert_events WHERE alert_id = ? ORDER BY id",
            (found["id"],),
        )
        return found, events

    rule, events = await source.database.query(read)

    async def body(db: Tx) -> bool:
        existing = await db.fetchall("SELECT id FROM alerts WHERE name = ?", (name,))
        if existing:
            subjects = await db.fetchall(
                "SELECT subject FROM alert_events WHERE alert_id = ? ORDER BY id",
                (existing[0]["id"],),
            )
            if [s["subject"] for s in subjects] != [e["subject"] for e in events]:
                raise Conflict(
                    f"alert {name!r} exists in both stores with different histories;"
                    " rename or delete it in one of them before merging"
                )
            return False
        await db.execute(_insert_sql("alerts", ALERT_COLUMNS), _values(rule, ALERT_COLUMNS))
        (new,) = await db.fetchall("SELECT id FROM alerts WHERE name = ?", (name,))
        await _insert_children(
            db, "alert_events", "alert_id", new["id"], ALERT_EVENT_COLUMNS, events, report
        )
        report.add("alerts", 1)
        if not events:
            report.add("alert_events", 0)
        return True

    copied: bool = await target.database.transact(body)
    return copied


async def _tally(
    store: SQLStore,
    run_ids: Sequence[str],
    models: Sequence[str],
    pipelines: Sequence[str],
    alerts: Sequence[str],
) -> dict[str, int]:
    counts: dict[str, int] = {}

    async def read(db: Tx) -> None:
        for start in range(0, len(run_ids), 500):
            ids = run_ids[start : start + 500]
            marks = ", ".join("?" * len(ids))
            counts["runs"] = counts.get("runs", 0) + await _count(
                db, f"SELECT count(*) AS n FROM runs WHERE id IN ({marks})", ids
            )
            for table, _, _ in RUN_CHILDREN:
                counts[table] = counts.get(table, 0) + await _count(
                    db, f"SELECT count(*) AS n FROM {table} WHERE run_id IN ({marks})", ids
                )
        for name in models:
            for table, _, _ in MODEL_CHILDREN:
                counts[table] = counts.get(table, 0) + await _count(
                    db,
                    f"SELECT count(*) AS n FROM {table} t JOIN models m ON m.id = t.model_id"
                    " WHERE m.name = ?",
                    (name,),
                )
        for start in range(0, len(pipelines), 500):
            ids = pipelines[start : start + 500]
            marks = ", ".join("?" * len(ids))
            for table, column in (("pipelines", "id"), ("pipeline_steps", "pipeline_id")):
                counts[table] = counts.get(table, 0) + await _count(
                    db, f"SELECT count(*) AS n FROM {table} WHERE {column} IN ({marks})", ids
                )
        for name in alerts:
            counts["alerts"] = counts.get("alerts", 0) + await _count(
                db, "SELECT count(*) AS n FROM alerts WHERE name = ?", (name,)
            )
            counts["alert_events"] = counts.get("alert_events", 0) + await _count(
                db,
                "SELECT count(*) AS n FROM alert_events ev JOIN alerts a ON a.id = ev.alert_id"
                " WHERE a.name = ?",
                (name,),
            )

    await store.database.query(read)
    return counts


async def verify(
    source: SQLStore,
    target: SQLStore,
    run_ids: Sequence[str],
    models: Sequence[str],
    pipelines: Sequence[str] = (),
    alerts: Sequence[str] = (),
) -> None:
    """Check that the target holds as many rows of each copied run, model, pipeline, alert."""
    expected = await _tally(source, run_ids, models, pipelines, alerts)
    found = await _tally(target, run_ids, models, pipelines, alerts)
    wrong = {t: (n, found.get(t, 0)) for t, n in expected.items() if found.get(t, 0) != n}
    if wrong:
        detail = ", ".join(f"{t}: source {a}, target {b}" for t, (a, b) in sorted(wrong.items()))
        raise Conflict(f"migration verification failed ({detail})")


def as_sql_store(store: object, url: str) -> SQLStore:
    """The store as a :class:`SQLStore` (every built-in backend is one)."""
    if not isinstance(store, SQLStore):
        raise InvalidInput(f"cannot migrate {url}: not a SQL store")
    return store
