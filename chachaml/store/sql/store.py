"""``SQLStore``: the store protocols over one :class:`Database`, by composing repositories.

Each noun's SQL lives in its repository (:mod:`runs`, :mod:`registry`, :mod:`alerts`, ...),
written once against the database seam; this class builds one of each over the backend's
database and answers every method of :class:`~chachaml.store.server_state.ServerStore` by
handing it to the repository that owns the noun. A backend (:mod:`chachaml.store.sqlite`,
:mod:`chachaml.store.postgres`) only supplies the database: connections, transactions,
migrations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from chachaml.records.alerts import (
    AlertEvent,
    AlertRule,
    DeliveryAttempt,
    DeliveryStatus,
    NewAlert,
    NewAlertEvent,
    PendingDelivery,
    SilentRun,
    StaleExperiment,
    TriedDelivery,
)
from chachaml.records.events import Event
from chachaml.records.metrics import MetricOutline
from chachaml.records.pipelines import NewPipeline, PipelineDetail, PipelineInfo, PipelineStep
from chachaml.records.registry import Model, ModelDetail, ModelVersion, NewModelVersion, Stage
from chachaml.records.runs import (
    Artifact,
    ArtifactRecord,
    BestRun,
    Dataset,
    EndStatus,
    Experiment,
    MetricChunk,
    MetricPoints,
    MetricSeries,
    MetricSummary,
    NewRun,
    ParamValue,
    Run,
    RunInfo,
    RunQuery,
    StopRequest,
)
from chachaml.records.subscriptions import NewSubscription, Subscription
from chachaml.store.protocol import PipelineEnd, StepEnd
from chachaml.store.server_state import IdempotentReply, Scope, TokenInfo, TokenOwner
from chachaml.store.sql.alerts import Alerts
from chachaml.store.sql.artifacts import Artifacts
from chachaml.store.sql.database import Database, Tx
from chachaml.store.sql.deliveries import Deliveries
from chachaml.store.sql.events import Events
from chachaml.store.sql.experiments import Experiments
from chachaml.store.sql.idempotency import IdempotencyKeys
from chachaml.store.sql.metrics import Metrics
from chachaml.store.sql.pipelines import Pipelines
from chachaml.store.sql.registry import Registry
from chachaml.store.sql.run_queries import RunQueries
from chachaml.store.sql.runs import Runs
from chachaml.store.sql.sinks import Sinks
from chachaml.store.sql.subscriptions import Subscriptions
from chachaml.store.sql.tokens import Tokens


class SQLStore:
    """A :class:`~chachaml.store.server_state.ServerStore` over a backend's :class:`Database`.

    The repositories are public attributes: code that copies or seeds a store in bulk
    (:mod:`chachaml.store.transfer`, the benchmarks) uses ``database`` directly.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.experiments = Experiments(database)
        self.runs = Runs(database)
        self.run_queries = RunQueries(database, self.experiments)
        self.metrics = Metrics(database)
        self.artifacts = Artifacts(database)
        self.registry = Registry(database)
        self.pipelines = Pipelines(database)
        self.alerts = Alerts(database)
        self.deliveries = Deliveries(database)
        self.tokens = Tokens(database)
        self.idempotency = IdempotencyKeys(database)
        self.events = Events(database)
        self.sinks = Sinks(database)
        self.subscriptions = Subscriptions(database)

    @property
    def url(self) -> str:
        """The URL this store was opened with (no password)."""
        return self.database.url

    async def close(self) -> None:
        """Release every connection; the store is unusable afterwards."""
        await self.database.close()

    async def change_marker(self) -> str | None:
        """A token that changes once any process has committed a write (see ``Store``)."""
        return await self.database.change_marker()

    async def unused_uris(self, uris: Sequence[str]) -> list[str]:
        """Those of ``uris`` that no artifact record or model version references right now."""
        return await self.artifacts.unused_uris(uris)

    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create the experiment, or update description/owner given for an existing one."""
        return await self.experiments.create_experiment(name, description, owner)

    async def get_experiment(self, name: str) -> Experiment:
        """The experiment with run count and last activity; ``NotFound`` if absent."""
        return await self.experiments.get_experiment(name)

    async def list_experiments(self) -> list[Experiment]:
        """Every experiment not archived, most recently active first."""
        return await self.experiments.list_experiments()

    async def metric_summaries_of_runs(
        self, run_ids: Sequence[str]
    ) -> dict[str, dict[str, MetricSummary]]:
        """Each metric's summary for each of these runs (unknown runs: empty)."""
        return await self.metrics.summaries_of(run_ids)

    async def get_experiment_by_id(self, experiment_id: int, brief: bool = False) -> Experiment:
        """One experiment by id, archived or not; ``NotFound`` if absent."""
        return await self.experiments.get_experiment_by_id(experiment_id, brief)

    async def list_archived_experiments(self) -> list[Experiment]:
        """Every archived experiment, most recently active first."""
        return await self.experiments.list_experiments(archived=True)

    async def experiment_names(self) -> dict[int, str]:
        """Each experiment not archived, id to name (no run read)."""
        return await self.experiments.names_not_archived()

    async def rename_experiment(
        self, experiment_id: int, name: str, user: str | None = None
    ) -> None:
        """Rename an experiment; ``Conflict`` if the name is taken."""
        await self.experiments.rename_experiment(experiment_id, name, user)

    async def set_experiment_archived(
        self, experiment_id: int, archived: bool, user: str | None = None
    ) -> None:
        """Archive an experiment and its runs, or restore both."""
        await self.experiments.set_archived(experiment_id, archived, user)

    async def set_experiment_tag(
        self, experiment_id: int, key: str, value: str, user: str | None = None
    ) -> None:
        """Set one tag of an experiment."""
        await self.experiments.set_tag(experiment_id, key, value, user)

    async def delete_experiment_tag(
        self, experiment_id: int, key: str, user: str | None = None
    ) -> None:
        """Remove one tag of an experiment; ``NotFound`` if it has none of that key."""
        await self.experiments.delete_tag(experiment_id, key, user)

    async def create_run(self, run: NewRun) -> None:
        """Insert a running run, creating its experiment if needed."""
        await self.runs.create_run(run)

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> None:
        """Mark a running run ended; ``Conflict`` if it had already ended."""
        await self.runs.end_run(run_id, status, error, ended_at)

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> list[StopRequest]:
        """Record that these running runs are alive at ``at``; their pending stop requests."""
        return await self.runs.heartbeat(run_ids, at)

    async def request_stop(
        self, run_id: str, user: str | None, reason: str | None, at: float
    ) -> StopRequest:
        """Ask a running run (and its running children) to stop, as ``user``, for ``reason``."""
        return await self.runs.request_stop(run_id, user, reason, at)

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params; same value again is a no-op, a different value is ``Conflict``."""
        await self.runs.log_params(run_id, params)

    async def set_tags(self, run_id: str, tags: Mapping[str, str], user: str | None = None) -> None:
        """Set (or overwrite) tags on a run."""
        await self.runs.set_tags(run_id, tags, user)

    async def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of a run; ``NotFound`` if it has none of that key."""
        await self.runs.delete_tag(run_id, key)

    async def rename_run(self, run_id: str, name: str | None) -> None:
        """Give a run another name (``None``: unnamed)."""
        await self.runs.rename_run(run_id, name)

    async def set_run_archived(self, run_id: str, archived: bool) -> None:
        """Archive one run or bring it back; ``Conflict`` for a registered model's run."""
        await self.runs.set_archived(run_id, archived)

    async def set_note(self, run_id: str, note: str, user: str | None = None) -> None:
        """Replace the run's markdown note, recording who set it (``user``) and when."""
        await self.runs.set_note(run_id, note, user)

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset description to a run."""
        await self.runs.log_dataset(run_id, dataset)

    async def log_metrics(self, chunks: Sequence[MetricChunk]) -> None:
        """Store metric chunks and fold them into each run's metric summary, atomically."""
        await self.metrics.log_metrics(chunks)

    async def add_artifact(self, record: ArtifactRecord) -> None:
        """Record an artifact, replacing an earlier one of the same name on that run."""
        await self.artifacts.add_artifact(record)

    async def get_run(self, run_id: str) -> Run:
        """Everything about a run; ``NotFound`` naming the id if absent."""
        return await self.run_queries.get_run(run_id)

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching the query, newest first or ordered by ``query.order_by_metric``."""
        return await self.run_queries.query_runs(query)

    async def best_run(self, query: RunQuery) -> BestRun | None:
        """The first run of a query ordered by ``order_by_metric``, with its latest value."""
        return await self.run_queries.best_run(query)

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match the query, ignoring limit and offset."""
        return await self.run_queries.count_runs(query)

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs at once, by run id."""
        return await self.runs.run_params(run_ids)

    async def child_counts(self, parent_ids: Sequence[str]) -> dict[str, int]:
        """How many unarchived child runs each of these runs has (none: absent)."""
        return await self.run_queries.child_counts(parent_ids)

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Latest value, step and range of each metric of a run."""
        return await self.metrics.metric_summaries(run_id)

    async def metric_history(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricSeries:
        """The points of one metric in a step range, by step; ``NotFound`` if never logged."""
        return await self.metrics.metric_history(run_id, key, min_step=min_step, max_step=max_step)

    async def metric_points(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricPoints:
        """The points of one metric in a step range as packed arrays, by step."""
        return await self.metrics.metric_points(run_id, key, min_step=min_step, max_step=max_step)

    async def metric_outline(
        self, run_id: str, key: str, *, min_step: int | None = None,
        max_step: int | None = None, points: int,
    ) -> MetricOutline:  # fmt: skip
        """A step range of one metric for a chart of ``points`` points."""
        return await self.metrics.metric_outline(
            run_id, key, min_step=min_step, max_step=max_step, points=points
        )

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact record; ``NotFound`` listing the run's artifacts if absent."""
        return await self.artifacts.get_artifact(run_id, name)

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """The run's artifacts by name."""
        return await self.artifacts.list_artifacts(run_id)

    async def archive_runs(self, started_before: float, experiment: str | None) -> int:
        """Archive ended runs started before the given time; returns how many."""
        return await self.runs.archive_runs(started_before, experiment)

    async def delete_archived(self) -> tuple[int, list[str]]:
        """Delete archived runs and their rows; returns how many, and artifact URIs now unused."""
        return await self.runs.delete_archived()

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Add the next version of a model (creating the model) from an artifact of a run."""
        return await self.registry.register_model_version(new)

    async def list_models(self) -> list[Model]:
        """Every model, most recently updated first."""
        return await self.registry.list_models()

    async def get_model(self, name: str) -> ModelDetail:
        """A model with its versions, aliases, tags, note and audit trail."""
        return await self.registry.get_model(name)

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions (only those in ``stage`` if given), newest first."""
        return await self.registry.list_model_versions(name, stage)

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version; ``NotFound`` listing the model's versions if absent."""
        return await self.registry.get_model_version(name, version)

    async def promote_model_version(
        self,
        name: str,
        version: int,
        stage: Stage,
        user: str,
        reason: str | None = None,
        archive_existing: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage (archiving the previous production version if needed)."""
        return await self.registry.promote_model_version(
            name, version, stage, user, reason, archive_existing
        )

    async def set_model_alias(self, name: str, alias: str, version: int, user: str) -> None:
        """Point an alias at a version (moving it if it pointed elsewhere)."""
        await self.registry.set_model_alias(name, alias, version, user)

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Remove an alias; ``NotFound`` listing the model's aliases if absent."""
        await self.registry.delete_model_alias(name, alias, user)

    async def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags on a model."""
        await self.registry.set_model_tags(name, tags)

    async def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str]
    ) -> None:
        """Set (or overwrite) tags on a model version."""
        await self.registry.set_model_version_tags(name, version, tags)

    async def set_model_note(self, name: str, note: str) -> None:
        """Replace the model's markdown note."""
        await self.registry.set_model_note(name, note)

    async def create_model(
        self, name: str, user: str, note: str | None = None, tags: Mapping[str, str] | None = None
    ) -> ModelDetail:
        """Create a model with no versions yet; ``Conflict`` if the name is taken."""
        return await self.registry.create_model(name, user, note, tags)

    async def rename_model(self, name: str, new_name: str) -> None:
        """Rename a model; ``Conflict`` if ``new_name`` is taken."""
        await self.registry.rename_model(name, new_name)

    async def delete_model(self, name: str) -> None:
        """Delete a model with its versions, aliases, tags and audit trail."""
        await self.registry.delete_model(name)

    async def delete_model_tags(self, name: str, keys: Sequence[str]) -> None:
        """Delete tags of a model (keys it does not have are ignored)."""
        await self.registry.delete_model_tags(name, keys)

    async def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version with its aliases and tags (its number is not reused)."""
        await self.registry.delete_model_version(name, version)

    async def set_model_version_description(
        self, name: str, version: int, description: str | None
    ) -> None:
        """Replace a version's description (``None`` clears it)."""
        await self.registry.set_model_version_description(name, version, description)

    async def delete_model_version_tags(self, name: str, version: int, keys: Sequence[str]) -> None:
        """Delete tags of a version (keys it does not have are ignored)."""
        await self.registry.delete_model_version_tags(name, version, keys)

    async def create_pipeline(self, new: NewPipeline) -> None:
        """Record a running pipeline with its steps pending; ``Conflict`` if the id exists."""
        await self.pipelines.create_pipeline(new)

    async def start_pipeline_step(
        self, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Mark a pending or running step running, in attempt ``attempt`` on run ``run_id``."""
        await self.pipelines.start_pipeline_step(pipeline_id, step, run_id, attempt, started_at)

    async def start_pipeline_step_run(
        self, run: NewRun, pipeline_id: str, step: str, attempt: int
    ) -> None:
        """Create a step attempt's run and mark the step running on it: one transaction."""

        async def body(db: Tx) -> None:
            await self.runs.insert_run(db, run)
            await self.pipelines.start_step_in(db, pipeline_id, step, run.id, attempt,
                                               run.started_at)  # fmt: skip

        await self.database.transact(body)

    async def complete_pipeline_step_run(
        self, pipeline_id: str, step: str, run_id: str, ended_at: float, result: str | None
    ) -> None:
        """End the step's run completed and the step completed with its result: one write."""

        async def body(db: Tx) -> None:
            await self.runs.end_run_in(db, run_id, "completed", None, ended_at)
            await self.pipelines.end_step_in(db, pipeline_id, step, "completed", ended_at, None,
                                             result)  # fmt: skip

        await self.database.transact(body)

    async def end_pipeline_step(
        self,
        pipeline_id: str,
        step: str,
        status: StepEnd,
        ended_at: float,
        error: str | None = None,
        result: str | None = None,
    ) -> None:
        """End a running step (``skipped``: a pending one), with its error or JSON result."""
        await self.pipelines.end_pipeline_step(pipeline_id, step, status, ended_at, error, result)

    async def end_pipeline(
        self, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
    ) -> None:
        """Mark a running pipeline ended."""
        await self.pipelines.end_pipeline(pipeline_id, status, error, ended_at)

    async def resume_pipeline(
        self, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
    ) -> PipelineDetail:
        """Reset the ``rerun`` steps to pending and mark the pipeline running on ``run_id``."""
        return await self.pipelines.resume_pipeline(pipeline_id, run_id, rerun, at)

    async def list_pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[PipelineInfo]:
        """Pipelines, newest first, narrowed by name and (computed) status."""
        return await self.pipelines.list_pipelines(name, status, limit)

    async def get_pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline with its steps; ``NotFound`` naming the id if absent."""
        return await self.pipelines.get_pipeline(pipeline_id)

    async def get_pipeline_step(self, pipeline_id: str, step: str) -> PipelineStep:
        """One step of a pipeline; ``NotFound`` naming the pipeline or the step if absent."""
        return await self.pipelines.get_pipeline_step(pipeline_id, step)

    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Create the rule, or replace the definition of the rule with its name."""
        return await self.alerts.set_alert(new)

    async def list_alerts(self) -> list[AlertRule]:
        """Every rule, by name."""
        return await self.alerts.list_alerts()

    async def get_alert(self, name: str) -> AlertRule:
        """One rule; ``NotFound`` listing the rules if absent."""
        return await self.alerts.get_alert(name)

    async def delete_alert(self, name: str) -> None:
        """Delete a rule and its events; ``NotFound`` listing the rules if absent."""
        await self.alerts.delete_alert(name)

    async def alert_events(self, name: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events of one rule (of every rule when ``name`` is ``None``), newest first."""
        return await self.alerts.alert_events(name, limit)

    async def create_token(self, user: str, scope: Scope, token_hash: str, hint: str = "") -> int:
        """Record a token (by hash) for a user with a scope; returns its id."""
        return await self.tokens.create_token(user, scope, token_hash, hint)

    async def find_token(self, token_hash: str) -> TokenOwner | None:
        """The owner of a token hash, or ``None`` (unknown or revoked)."""
        return await self.tokens.find_token(token_hash)

    async def has_tokens(self) -> bool:
        """Whether any token that is not revoked exists."""
        return await self.tokens.has_tokens()

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        return await self.tokens.list_tokens()

    async def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke a token by id (again is harmless); ``NotFound`` for an unknown id."""
        return await self.tokens.revoke_token(token_id)

    async def claim_idempotency_key(
        self, user: str, key: str, request_hash: str, lease: float = 60.0
    ) -> IdempotentReply | None:
        """Claim a key, or take over a claim older than ``lease`` seconds."""
        return await self.idempotency.claim_idempotency_key(user, key, request_hash, lease)

    async def finish_idempotency_key(self, user: str, key: str, status: int, body: str) -> None:
        """Store the reply of the request that claimed the key."""
        await self.idempotency.finish_idempotency_key(user, key, status, body)

    async def release_idempotency_key(self, user: str, key: str) -> None:
        """Drop an in-flight claim (its request failed and may be retried)."""
        await self.idempotency.release_idempotency_key(user, key)

    async def fire_alert(self, name: str, event: NewAlertEvent) -> AlertEvent | None:
        """Record a firing unless the rule fired for this subject already or is cooling down."""
        return await self.alerts.fire_alert(name, event)

    async def stale_experiments(
        self, experiment: str | None, cutoff: float
    ) -> list[StaleExperiment]:
        """Experiments (all, or the one named) with no run completed at or after ``cutoff``."""
        return await self.alerts.stale_experiments(experiment, cutoff)

    async def silent_runs(self, experiment: str | None, cutoff: float) -> list[SilentRun]:
        """Unarchived runs never ended whose latest metric point (or start) is before ``cutoff``."""
        return await self.alerts.silent_runs(experiment, cutoff)

    async def record_delivery(
        self,
        event_id: int,
        attempt: DeliveryAttempt,
        status: DeliveryStatus,
        retry_at: float | None = None,
    ) -> None:
        """Append a delivery attempt to an event and set its delivery status."""
        await self.deliveries.record_delivery(event_id, attempt, status, retry_at)

    async def claim_deliveries(
        self, now: float, lease_until: float, limit: int, follow: int = 0
    ) -> list[PendingDelivery]:
        """Claim up to ``limit`` pending deliveries due at ``now``, leased until ``lease_until``."""
        return await self.deliveries.claim_deliveries(now, lease_until, limit, follow)

    async def pending_deliveries(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the earliest is due (epoch seconds)."""
        return await self.deliveries.pending_deliveries()

    async def subscribe(self, new: NewSubscription) -> Subscription:
        """Create a subscription starting after the newest event."""
        return await self.subscriptions.subscribe(new)

    async def unsubscribe(self, subscription_id: int) -> None:
        """Delete a subscription and its queued rows; ``NotFound`` if absent."""
        await self.subscriptions.unsubscribe(subscription_id)

    async def list_subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        return await self.subscriptions.list_subscriptions()

    async def queue_subscribed_events(self, limit: int) -> int:
        """Queue the next page of events for the subscriptions behind; events in the page."""
        return await self.subscriptions.queue_events(limit)

    async def record_subscription_deliveries(
        self, tried: Sequence[TriedDelivery], unsent: Sequence[int], now: float
    ) -> None:
        """Record tries of subscriptions' claimed rows; hand back the unsent ones."""
        await self.subscriptions.record_deliveries(tried, unsent, now)

    async def read_events(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events of the outbox with ids above ``after``, in id order."""
        return await self.events.read_events(after, limit)

    async def last_event_id(self) -> int:
        """The id of the newest event kept (0 when there is none)."""
        return await self.events.last_event_id()

    async def prune_events(self, before: float) -> int:
        """Delete events older than ``before`` (epoch seconds); returns how many.

        Subscriptions' deliveries queued before then are given up on too (counted failed).
        """
        await self.subscriptions.expire_queued(before)
        return await self.events.prune_events(before)

    async def sweep_killed(self, now: float) -> list[str]:
        """Send ``run.killed`` once per run whose heartbeat went stale; the runs marked."""
        return await self.runs.sweep_killed(now)

    async def claim_sink(self, name: str, owner: str, now: float, lease_until: float) -> int | None:
        """The sink's cursor if ``owner`` holds (or now takes) its lease, else ``None``."""
        return await self.sinks.claim_sink(name, owner, now, lease_until)

    async def advance_sink(
        self, name: str, owner: str, last_seq: int, now: float, lease_until: float
    ) -> bool:
        """Move the sink's cursor and renew the lease; ``False`` if ``owner`` lost it."""
        return await self.sinks.advance_sink(name, owner, last_seq, now, lease_until)

    async def release_sink(self, name: str, owner: str) -> None:
        """Give up the lease of a sink."""
        await self.sinks.release_sink(name, owner)

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (any thread) whenever events may have been committed; until cancelled."""
        await self.database.listen_events(wake)

    @property
    def event_poll_seconds(self) -> float:
        """How often an event reader polls for what ``listen_events`` does not hear."""
        return self.database.event_poll_seconds
