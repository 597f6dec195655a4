"""SQLite schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

from chachaml.store.migrations import Migration, tracking
from chachaml.store.migrations.checks import widen_check
from chachaml.store.migrations.metric_chunks import fill_step_spans

STATUSES = "CHECK (status IN ('running', 'completed', 'failed', 'killed'))"
STATUSES_STOPPED = "CHECK (status IN ('running', 'completed', 'failed', 'killed', 'stopped'))"

MIGRATIONS: tuple[Migration, ...] = (
    tracking.SQLITE,
    Migration(
        2,
        "registry",
        (
            """CREATE TABLE models (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                note TEXT,
                created_by TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE TABLE model_versions (
                model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
                version INTEGER NOT NULL CHECK (version > 0),
                run_id TEXT NOT NULL REFERENCES runs(id),
                artifact TEXT NOT NULL,
                artifact_uri TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                serializer TEXT NOT NULL,
                content_type TEXT NOT NULL,
                size INTEGER NOT NULL,
                stage TEXT NOT NULL
                    CHECK (stage IN ('none', 'staging', 'production', 'archived')),
                description TEXT,
                created_by TEXT NOT NULL,
                created_at REAL NOT NULL,
                stage_changed_at REAL NOT NULL,
                PRIMARY KEY (model_id, version)
            )""",
            # the registry's core invariant, enforced by the database itself
            """CREATE UNIQUE INDEX model_versions_one_production
                ON model_versions (model_id) WHERE stage = 'production'""",
            "CREATE INDEX model_versions_run ON model_versions (run_id)",
            "CREATE INDEX model_versions_uri ON model_versions (artifact_uri)",
            """CREATE TABLE model_aliases (
                model_id INTEGER NOT NULL,
                alias TEXT NOT NULL,
                version INTEGER NOT NULL,
                updated_by TEXT NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (model_id, alias),
                FOREIGN KEY (model_id, version)
                    REFERENCES model_versions(model_id, version) ON DELETE CASCADE
            )""",
            """CREATE TABLE model_tags (
                model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (model_id, key)
            )""",
            """CREATE TABLE model_version_tags (
                model_id INTEGER NOT NULL,
                version INTEGER NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (model_id, version, key),
                FOREIGN KEY (model_id, version)
                    REFERENCES model_versions(model_id, version) ON DELETE CASCADE
            )""",
            """CREATE TABLE model_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
                kind TEXT NOT NULL CHECK (kind IN ('stage', 'alias')),
                version INTEGER NOT NULL,
                alias TEXT,
                old_value TEXT,
                new_value TEXT,
                changed_by TEXT NOT NULL,
                at REAL NOT NULL,
                reason TEXT
            )""",
            "CREATE INDEX model_events_model ON model_events (model_id, id)",
            # a run that a model version came from keeps its artifacts: never archived
            """CREATE TRIGGER runs_keep_registered BEFORE UPDATE OF archived ON runs
                WHEN NEW.archived = 1
                 AND EXISTS (SELECT 1 FROM model_versions WHERE run_id = NEW.id)
                BEGIN SELECT RAISE(IGNORE); END""",
        ),
    ),
    Migration(
        3,
        "pipelines",
        (
            """CREATE TABLE pipelines (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                description TEXT,
                run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
                status TEXT NOT NULL
                    CHECK (status IN ('running', 'completed', 'failed', 'killed')),
                created_by TEXT NOT NULL,
                started_at REAL NOT NULL,
                ended_at REAL,
                error TEXT,
                max_parallel INTEGER NOT NULL CHECK (max_parallel > 0),
                resumes INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX pipelines_started ON pipelines (started_at)",
            "CREATE INDEX pipelines_name_started ON pipelines (name, started_at)",
            "CREATE INDEX pipelines_run ON pipelines (run_id)",
            """CREATE TABLE pipeline_steps (
                pipeline_id TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                position INTEGER NOT NULL,
                depends_on TEXT NOT NULL DEFAULT '[]',
                target TEXT,
                retries INTEGER NOT NULL DEFAULT 0,
                backoff REAL NOT NULL DEFAULT 0,
                timeout REAL,
                status TEXT NOT NULL CHECK (status IN
                    ('pending', 'running', 'completed', 'failed', 'skipped', 'killed')),
                started_at REAL,
                ended_at REAL,
                error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
                result TEXT,
                PRIMARY KEY (pipeline_id, name)
            )""",
            "CREATE INDEX pipeline_steps_run ON pipeline_steps (run_id)",
        ),
    ),
    Migration(
        4,
        "alerts",
        (
            """CREATE TABLE alerts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL
                    CHECK (kind IN ('threshold', 'drop', 'no_completed_run', 'silent_run')),
                experiment TEXT,
                metric_key TEXT,
                op TEXT CHECK (op IN ('>', '>=', '<', '<=', '=')),
                threshold REAL,
                drop_pct REAL,
                baseline_model TEXT,
                baseline_runs INTEGER,
                window_seconds REAL,
                cooldown_seconds REAL NOT NULL DEFAULT 0,
                webhook_url TEXT,
                secret TEXT,
                created_by TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                last_fired_at REAL
            )""",
            # events are history: they keep run ids and experiment names after runs are deleted
            """CREATE TABLE alert_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
                subject TEXT NOT NULL,
                run_id TEXT,
                experiment TEXT,
                value REAL,
                threshold REAL,
                baseline REAL,
                message TEXT NOT NULL,
                fired_at REAL NOT NULL,
                delivery TEXT NOT NULL
                    CHECK (delivery IN ('none', 'pending', 'delivered', 'failed')),
                attempts TEXT NOT NULL DEFAULT '[]',
                UNIQUE (alert_id, subject)
            )""",
            "CREATE INDEX alert_events_alert ON alert_events (alert_id, id)",
        ),
    ),
    Migration(
        5,
        "query indexes",
        (
            # metric summaries carry their run's experiment, so "best run of experiment X"
            # is one index seek; the database keeps the copy right on every insert path
            "ALTER TABLE metric_summary ADD COLUMN experiment_id INTEGER",
            """UPDATE metric_summary SET experiment_id =
                (SELECT experiment_id FROM runs WHERE runs.id = metric_summary.run_id)""",
            """CREATE TRIGGER metric_summary_experiment AFTER INSERT ON metric_summary
                WHEN NEW.experiment_id IS NULL
                BEGIN
                    UPDATE metric_summary SET experiment_id =
                        (SELECT experiment_id FROM runs WHERE runs.id = NEW.run_id)
                    WHERE run_id = NEW.run_id AND key = NEW.key;
                END""",
            """CREATE INDEX metric_summary_key_experiment_value
                ON metric_summary (key, experiment_id, last_value, run_id)""",
            # best-first orderings break ties on run_id: index it so no sort step is needed
            "DROP INDEX metric_summary_key_value",
            "CREATE INDEX metric_summary_key_value ON metric_summary (key, last_value, run_id)",
            # listings order by (started_at, id): index both so no sort step is needed
            "DROP INDEX runs_started",
            "CREATE INDEX runs_started ON runs (started_at, id)",
            "DROP INDEX runs_experiment_started",
            "CREATE INDEX runs_experiment_started ON runs (experiment_id, started_at, id)",
        ),
    ),
    Migration(
        6,
        "api tokens and idempotency keys",
        (
            # tokens are stored as sha256 hashes: a leaked database does not leak tokens
            """CREATE TABLE api_tokens (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                user_name TEXT NOT NULL,
                scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
                token_hash TEXT NOT NULL UNIQUE,
                created_at REAL NOT NULL
            )""",
            # one row per (user, key): a retried write replays the stored response
            """CREATE TABLE idempotency_keys (
                user_name TEXT NOT NULL,
                key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status INTEGER NOT NULL,
                body TEXT,
                created_at REAL NOT NULL,
                PRIMARY KEY (user_name, key)
            )""",
        ),
    ),
    Migration(
        7,
        "token scopes with admin, revocation and a recognisable hint",
        (
            # SQLite cannot alter a CHECK constraint: the table is rebuilt with the same ids
            """CREATE TABLE api_tokens_v7 (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                user_name TEXT NOT NULL,
                scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
                token_hash TEXT NOT NULL UNIQUE,
                hint TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                revoked_at REAL
            )""",
            """INSERT INTO api_tokens_v7 (id, user_name, scope, token_hash, created_at)
                SELECT id, user_name, scope, token_hash, created_at FROM api_tokens""",
            "DROP TABLE api_tokens",
            "ALTER TABLE api_tokens_v7 RENAME TO api_tokens",
        ),
    ),
    Migration(
        8,
        "webhook delivery queue",
        (
            # alert webhooks are sent from this queue by a worker, never inside the request or
            # run end that fired them; a row lives as long as its event. No error bodies:
            # last_error is a kind (timeout, connection refused, http 503...)
            """CREATE TABLE webhook_deliveries (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id INTEGER NOT NULL UNIQUE REFERENCES alert_events(id) ON DELETE CASCADE,
                alert TEXT NOT NULL,
                url TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
                last_status INTEGER,
                last_error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
                WHERE status = 'pending'""",
            # deliveries in flight under the old in-process scheme have no queued body to resume
            "UPDATE alert_events SET delivery = 'failed' WHERE delivery = 'pending'",
        ),
    ),
    Migration(
        9,
        "metric batches, so a retried batch is stored once",
        (
            # a batch id per run, inserted in the transaction that stores the batch's chunks
            """CREATE TABLE metric_batches (
                run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                batch TEXT NOT NULL,
                PRIMARY KEY (run_id, batch)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        10,
        "who set a run's note, and when",
        (
            "ALTER TABLE runs ADD COLUMN note_by TEXT",
            "ALTER TABLE runs ADD COLUMN note_at REAL",
        ),
    ),
    Migration(
        11,
        "who set each run tag, and when",
        (
            "ALTER TABLE tags ADD COLUMN set_by TEXT",
            "ALTER TABLE tags ADD COLUMN set_at REAL",
        ),
    ),
    Migration(
        12,
        "the Runs table lists and counts top-level runs from one index",
        (
            # top-level runs (child runs nest under their parent) newest first, and their
            # count by status, user or experiment, read from the index alone
            """CREATE INDEX runs_top_started
                ON runs (started_at, id, status, created_by, experiment_id, archived, parent_id)
                WHERE parent_id IS NULL AND archived = 0""",
            # children are looked up by parent; without NULLs this index no longer draws
            # "parent_id IS NULL" (nearly every run) away from the one above
            "DROP INDEX runs_parent",
            "CREATE INDEX runs_parent ON runs (parent_id) WHERE parent_id IS NOT NULL",
        ),
    ),
    Migration(
        13,
        "alert rules can be muted (kept, not evaluated)",
        ("ALTER TABLE alerts ADD COLUMN muted INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        14,
        "runs ordered by a param are read a page at a time from an index",
        (
            # (key, kind: 0 a number / 1 text, the number, the JSON text): the Runs table
            # sorted by a param walks it in order and stops at the page. The expressions are
            # run_queries.param_kind_sql and param_number_sql over "value", as the planner
            # matches them to the queries' (a test holds them equal)
            "CREATE INDEX params_order ON params (key,"
            " (CASE WHEN (substr(value, 1, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7',"
            " '8', '9') AND value <> '-Infinity' AND length(value) <= 30) THEN 0 ELSE 1 END),"
            " (CASE WHEN (substr(value, 1, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7',"
            " '8', '9') AND value <> '-Infinity' AND length(value) <= 30)"
            " THEN CAST(value AS DOUBLE PRECISION) END),"
            " value)",
        ),
    ),
    Migration(
        15,
        "metric chunks carry their step span, so a step range reads only the chunks it needs",
        (
            # lowest and highest step, and whether the steps never decrease (then chunks in
            # step order are joined without sorting); filled as each chunk is stored
            "ALTER TABLE metric_chunks ADD COLUMN min_step INTEGER",
            "ALTER TABLE metric_chunks ADD COLUMN max_step INTEGER",
            "ALTER TABLE metric_chunks ADD COLUMN in_order INTEGER",
            fill_step_spans,
            # a range's lower bound seeks (a live chart asks for the points after its last
            # step); the upper bound and the span are read from the index, not the chunk row
            "DROP INDEX metric_chunks_run_key",
            """CREATE INDEX metric_chunks_run_key_span
                ON metric_chunks (run_id, key, max_step, min_step)""",
        ),
    ),
    Migration(
        16,
        "events: the outbox every state change writes its event to (issue 20)",
        (
            # one row per event, written in the transaction of the change it reports; seq is
            # the event's id (AUTOINCREMENT: never reused, even after pruning the newest rows,
            # so a consumer's Last-Event-ID stays meaningful)
            """CREATE TABLE events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                type TEXT NOT NULL,
                time REAL NOT NULL,
                subject TEXT,
                experiment TEXT,
                run_id TEXT,
                model TEXT,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX events_time ON events (time)",
            # when the server's sweep sent run.killed for a run whose heartbeat went stale
            "ALTER TABLE runs ADD COLUMN killed_at REAL",
        ),
    ),
    Migration(
        17,
        "experiments can be archived (MLflow's delete) and carry tags",
        (
            # archived experiments leave listings (their runs are archived with them) and
            # come back on restore; like runs, MLflow's "deleted" is chachaml's archived
            "ALTER TABLE experiments ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",
            """CREATE TABLE experiment_tags (
                experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (experiment_id, key)
            )""",
        ),
    ),
    Migration(
        18,
        "event sinks: each broker's cursor in the outbox and which publisher holds it",
        (
            # one row per broker (its URL without credentials): the last event published
            # and the publisher leasing it, so one replica at a time publishes to it
            """CREATE TABLE event_sinks (
                name TEXT PRIMARY KEY,
                last_seq INTEGER NOT NULL DEFAULT 0,
                owner TEXT,
                lease_until REAL,
                updated_at REAL
            )""",
        ),
    ),
    Migration(
        19,
        "runs can be asked to stop, and end stopped (issue 20)",
        (
            # a stop request: when, who asked and why; the run sees it at its next heartbeat
            "ALTER TABLE runs ADD COLUMN stop_requested_at REAL",
            "ALTER TABLE runs ADD COLUMN stop_requested_by TEXT",
            "ALTER TABLE runs ADD COLUMN stop_reason TEXT",
            widen_check("runs", STATUSES, STATUSES_STOPPED),
            widen_check("pipelines", STATUSES, STATUSES_STOPPED),
        ),
    ),
    Migration(
        20,
        "webhook subscriptions to the event stream, sent from the alert webhooks' queue",
        (
            # a URL, its type patterns (a JSON list), the outbox cursor up to which matching
            # events are queued, and the delivery log as counts and the last try
            """CREATE TABLE subscriptions (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                url TEXT NOT NULL,
                types TEXT NOT NULL,
                secret TEXT,
                created_by TEXT NOT NULL,
                created_at REAL NOT NULL,
                last_seq INTEGER NOT NULL DEFAULT 0,
                delivered INTEGER NOT NULL DEFAULT 0,
                failed INTEGER NOT NULL DEFAULT 0,
                last_status INTEGER,
                last_error TEXT,
                last_attempt_at REAL
            )""",
            # the queue now holds a subscription's events beside alert events (one of the
            # two owners per row): SQLite cannot drop NOT NULL, so the table is rebuilt
            """CREATE TABLE webhook_deliveries_v20 (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id INTEGER UNIQUE REFERENCES alert_events(id) ON DELETE CASCADE,
                alert TEXT,
                subscription_id INTEGER REFERENCES subscriptions(id) ON DELETE CASCADE,
                event_seq INTEGER,
                url TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
                last_status INTEGER,
                last_error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                CHECK ((event_id IS NULL) <> (subscription_id IS NULL)),
                UNIQUE (subscription_id, event_seq)
            )""",
            """INSERT INTO webhook_deliveries_v20 (id, event_id, alert, url, payload, attempts,
                next_attempt_at, status, last_status, last_error, created_at, updated_at)
                SELECT id, event_id, alert, url, payload, attempts, next_attempt_at, status,
                last_status, last_error, created_at, updated_at FROM webhook_deliveries""",
            "DROP TABLE webhook_deliveries",
            "ALTER TABLE webhook_deliveries_v20 RENAME TO webhook_deliveries",
            """CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
                WHERE status = 'pending'""",
            # a subscription's events go out in order: only its oldest pending row is due
            """CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (subscription_id, id)
                WHERE status = 'pending' AND subscription_id IS NOT NULL""",
        ),
    ),
    Migration(
        21,
        "metric chunks are stored compressed, each row in a chunk format (issue 22)",
        (
            # 0: the packed arrays as before (every chunk stored until now, read as it is);
            # 1: byte-shuffled zstd columns (chachaml.store.compression). Stored chunks are
            # not rewritten here: `chachaml compress-metrics` does it a batch at a time
            "ALTER TABLE metric_chunks ADD COLUMN format INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        22,
        "metric chunks in step order with finite values carry an outline for charts",
        (
            # each block's first lowest, highest and last point (chachaml.store.outline); NULL for
            # chunks stored before (read whole, as before), out of order or with NaN/inf
            "ALTER TABLE metric_chunks ADD COLUMN outline BLOB",
            # a chart reads the spans and outlines from this index alone: in the row they sit
            # after the arrays, and reading them walked every overflow page of the row (1.7
            # ms for a million points, more when those pages are not cached)
            "DROP INDEX metric_chunks_run_key_span",
            """CREATE INDEX metric_chunks_span_outline
                ON metric_chunks (run_id, key, max_step, min_step, count, in_order, outline)""",
        ),
    ),
)
