"""The ``Store`` protocol: what training code and every client need of storage.

Experiments, runs and their data, the model registry, pipelines, and alert rules with their
history. Every backend implements it: SQLite and PostgreSQL (as
:class:`~chachaml.store.server_state.ServerStore`, which adds what only a server keeps) and
the remote store over HTTP.

Contract for implementers:

- Every method is a coroutine and safe to call concurrently from many tasks of the event
  loop the store was opened on; writes are serialised or isolated by the backend so that
  concurrent writers (tasks or processes) never lose each other's data.
- Each write method is one transaction: it either happens completely or not at all.
- Times are epoch seconds (``float``) on the way in and aware UTC datetimes on the way out.
- A run id, experiment or artifact that does not exist raises ``NotFound`` naming it;
  a write contradicting stored data raises ``Conflict``; driver errors that make the store
  unusable are raised as ``StoreUnavailable``.
- A run whose status is ``running`` but whose heartbeat is older than its heartbeat
  timeout is reported as ``killed`` by every query, filters included.
- Runs marked archived are left out of queries unless the query asks for them.

Model registry:

- Each write method is one transaction: it happens completely or not at all, and
  concurrent writers (tasks, threads or processes) are serialised or isolated so the
  invariants below hold whatever the interleaving.
- At most one version of a model is in stage ``production``, enforced by the database
  (a unique index), not only by code. Putting a version into ``production`` (by
  registering or promoting it) archives the previous production version in the same
  transaction, and both stage changes are recorded in the audit trail.
- Every stage change (registration included, from ``None``) and every alias set, moved
  or removed appends an audit event naming who, when, from what and to what.
- Version numbers are 1, 2, 3, ... per model, assigned in the registering transaction,
  and never reused: a deleted version's number is not given again.
- A model exists from ``create_model`` or its first registration; its name is unique
  (``create_model`` and ``rename_model`` onto a taken name raise ``Conflict``). Deleting a
  model deletes its versions, aliases, tags and audit trail; deleting a version deletes its
  aliases and tags (and frees its run to be archived).
- A version registered with ``source`` (an MLflow model location) records that location
  as its ``artifact_uri`` with serializer ``mlflow``: no artifact of the run is copied or
  hashed (``sha256`` is empty), as MLflow's registry records a source without reading it.
- A version copies its artifact's URI, hash and serializer when registered: later
  re-logging of that artifact name does not change it.
- A run that a version came from is never archived (``archive_runs`` skips it) and
  cannot be deleted, so the version's artifact stays.
- A model, version, alias, run or artifact that does not exist raises ``NotFound``
  naming it and listing what does exist; registering from an archived run raises
  ``Conflict``. A failed write changes nothing.
- Versions are listed newest first; audit events oldest first.

Pipelines:

- A pipeline is created ``running`` with every step ``pending``, in one transaction, after
  its run exists; its id is chosen by the caller. Steps keep their definition order
  (``position``) and their dependencies as step names.
- Each write is one transaction that checks the current status first, so a step only goes
  ``pending`` → ``running`` → ``completed``/``failed``/``killed`` (``running`` again for a
  retry), or ``pending`` → ``skipped``; a pipeline only ends once. A write against another
  state raises ``Conflict`` naming the pipeline, the step and its state, and changes nothing.
- A stored step result is JSON text chosen by the caller (``None``: nothing stored).
- A pipeline stored as ``running`` whose run's heartbeat is older than its timeout (or whose
  run ended or is gone) is reported as ``killed`` by every read and filter, and its
  ``running`` steps as ``killed`` too.
- Resuming resets the named steps to ``pending`` (clearing times, error, attempts, run and
  result), points the pipeline at a new run, and counts the resume; a pipeline that is
  live (running with a fresh heartbeat) or completed raises ``Conflict``.
- A pipeline id or step name that does not exist raises ``NotFound`` naming it.
- Lists are newest first.

Alert rules:

- A rule's name is unique: ``set_alert`` with a name that exists replaces that rule's
  definition in place (same identity, same history, its ``created_*`` kept), never adds a
  second rule; concurrent ``set_alert`` calls on one name leave exactly one rule.
- Events are listed newest first. Deleting a rule deletes its events.
- A rule or event that does not exist raises ``NotFound`` naming it (for rules, listing the
  names that exist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from chachaml.records.alerts import AlertEvent, AlertRule, AlertTrial, NewAlert
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

StepEnd = Literal["completed", "failed", "skipped", "killed"]
PipelineEnd = Literal["completed", "failed", "killed", "stopped"]


class Store(Protocol):
    """Async persistence for experiments, runs and their data, models, pipelines, alert rules."""

    @property
    def url(self) -> str:
        """The URL the store was opened with (no password)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    async def change_marker(self) -> str | None:
        """A token that changes once any process has committed a write; ``None``: unknown.

        Read it before a read: if a later call returns the same token, nothing was committed
        in between (by this or another process, or another replica), so that read's answer
        still stands. Answer caches rely on this; ``None`` means never cache.
        """
        ...

    # experiments
    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create the experiment, or update description/owner given for an existing one."""
        ...

    async def get_experiment(self, name: str) -> Experiment:
        """The experiment with run count and last activity; ``NotFound`` if absent."""
        ...

    async def list_experiments(self) -> list[Experiment]:
        """Every experiment not archived, most recently active first."""
        ...

    # experiment edits (by id, which never changes; each writes its experiment.* event)
    async def rename_experiment(
        self, experiment_id: int, name: str, user: str | None = None
    ) -> None:
        """Rename an experiment; ``Conflict`` if any experiment holds the name, archived or not.

        Alert rules scoped to the experiment follow it; alert events keep the old name.
        """
        ...

    async def set_experiment_archived(
        self, experiment_id: int, archived: bool, user: str | None = None
    ) -> None:
        """Archive an experiment with its runs (MLflow's delete), or restore it with its runs.

        Runs that a model version came from are never archived. An archived experiment is out
        of ``list_experiments`` but still found by name and id, and keeps its name.
        """
        ...

    async def set_experiment_tag(
        self, experiment_id: int, key: str, value: str, user: str | None = None
    ) -> None:
        """Set (or overwrite) one tag of an experiment."""
        ...

    async def delete_experiment_tag(
        self, experiment_id: int, key: str, user: str | None = None
    ) -> None:
        """Remove one tag of an experiment; ``NotFound`` if it has none of that key."""
        ...

    # runs: writes
    async def create_run(self, run: NewRun) -> None:
        """Insert a running run, creating its experiment if needed."""
        ...

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> None:
        """Mark a running run ended; ``Conflict`` if it had already ended."""
        ...

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> list[StopRequest]:
        """Record that these running runs are alive at ``at``; their pending stop requests.

        A run's process hears that it was asked to stop from this reply (within one
        heartbeat interval); a request stays pending until the run ends.
        """
        ...

    async def request_stop(
        self, run_id: str, user: str | None, reason: str | None, at: float
    ) -> StopRequest:
        """Record who asked a running run (and its running children) to stop, and why.

        Written with its ``run.stop_requested`` events in one transaction; asking again
        returns the first request unchanged. ``Conflict`` for a run that ended or reads
        killed. A run asked to stop that then ends as completed is stored as ``stopped``.
        """
        ...

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params; same value again is a no-op, a different value is ``Conflict``."""
        ...

    async def set_tags(self, run_id: str, tags: Mapping[str, str], user: str | None = None) -> None:
        """Set (or overwrite) tags on a run."""
        ...

    async def set_note(self, run_id: str, note: str, user: str | None = None) -> None:
        """Replace the run's markdown note, recording who set it (``user``) and when."""
        ...

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset description to a run."""
        ...

    async def log_metrics(self, chunks: Sequence[MetricChunk]) -> None:
        """Store metric chunks and fold them into each run's metric summary, atomically."""
        ...

    async def add_artifact(self, record: ArtifactRecord) -> None:
        """Record an artifact, replacing an earlier one of the same name on that run."""
        ...

    # runs: reads
    async def get_run(self, run_id: str) -> Run:
        """Everything about a run; ``NotFound`` naming the id if absent."""
        ...

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching the query, newest first or ordered by ``query.order_by_metric``."""
        ...

    async def best_run(self, query: RunQuery) -> BestRun | None:
        """The first run of a query ordered by ``order_by_metric``, with its latest value.

        Value and step come from the same snapshot as the run; ``None`` when no run matches.
        """
        ...

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match the query, ignoring limit and offset (at most ``count_up_to``)."""
        ...

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs at once, by run id."""
        ...

    async def child_counts(self, parent_ids: Sequence[str]) -> dict[str, int]:
        """How many unarchived child runs each of these runs has (none: absent)."""
        ...

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Latest value, step and range of each metric of a run."""
        ...

    async def metric_history(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricSeries:
        """The points of one metric in a step range, ordered by step.

        The range is ``min_step <= step <= max_step``, each bound optional (none: every
        point); ``NotFound`` if the metric was never logged, an empty series if no point
        falls in the range. Points of one step keep the order they were logged in; if the
        metric was logged out of step order, points of one step are ordered by timestamp.
        """
        ...

    async def metric_points(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricPoints:
        """What :meth:`metric_history` returns, as packed arrays, with the series' extent.

        NaN stays NaN; ``total``, ``first_step`` and ``last_step`` count and span the whole
        series. For readers of a million points that must not build a Python object per
        point (the charts' downsampling).
        """
        ...

    async def metric_outline(
        self, run_id: str, key: str, *, min_step: int | None = None,
        max_step: int | None = None, points: int,
    ) -> MetricOutline:  # fmt: skip
        """A step range of one metric for a chart cut to ``points`` points (``MetricOutline``).

        Every point of the range, or, when the range is large, of each block of a chunk with
        an outline that lies in the range only its first lowest, first highest and last point
        (see :mod:`chachaml.store.outline`), each point with its index among the range's
        points; NaN and infinities are always returned.
        ``in_range`` counts the range's points; the rest as :meth:`metric_points`.
        """
        ...

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact record; ``NotFound`` listing the run's artifacts if absent."""
        ...

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """The run's artifacts by name."""
        ...

    # cleanup
    async def archive_runs(self, started_before: float, experiment: str | None) -> int:
        """Archive ended runs started before the given time; returns how many."""
        ...

    async def delete_archived(self) -> tuple[int, list[str]]:
        """Delete archived runs and their rows; returns how many, and artifact URIs now unused."""
        ...

    # model registry

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Add the next version of a model (creating the model) from an artifact of a run."""
        ...

    async def list_models(self) -> list[Model]:
        """Every model, most recently updated first."""
        ...

    async def get_model(self, name: str) -> ModelDetail:
        """A model with its versions, aliases, tags, note and audit trail."""
        ...

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions (only those in ``stage`` if given), newest first."""
        ...

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version; ``NotFound`` listing the model's versions if absent."""
        ...

    async def promote_model_version(
        self,
        name: str,
        version: int,
        stage: Stage,
        user: str,
        reason: str | None = None,
        archive_existing: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage (archiving the previous production version if needed).

        ``archive_existing`` also archives every other version in the target stage, in the
        same transaction (MLflow's ``archive_existing_versions``). Promoting a version to the
        stage it is in already changes nothing.
        """
        ...

    async def set_model_alias(self, name: str, alias: str, version: int, user: str) -> None:
        """Point an alias at a version (moving it if it pointed elsewhere)."""
        ...

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Remove an alias; ``NotFound`` listing the model's aliases if absent."""
        ...

    async def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags on a model."""
        ...

    async def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str]
    ) -> None:
        """Set (or overwrite) tags on a model version."""
        ...

    async def set_model_note(self, name: str, note: str) -> None:
        """Replace the model's markdown note."""
        ...

    async def create_model(
        self, name: str, user: str, note: str | None = None, tags: Mapping[str, str] | None = None
    ) -> ModelDetail:
        """Create a model with no versions yet; ``Conflict`` if the name is taken."""
        ...

    async def rename_model(self, name: str, new_name: str) -> None:
        """Rename a model; ``Conflict`` if ``new_name`` is taken."""
        ...

    async def delete_model(self, name: str) -> None:
        """Delete a model with its versions, aliases, tags and audit trail."""
        ...

    async def delete_model_tags(self, name: str, keys: Sequence[str]) -> None:
        """Delete tags of a model (keys it does not have are ignored)."""
        ...

    async def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version with its aliases and tags (its number is not reused)."""
        ...

    async def set_model_version_description(
        self, name: str, version: int, description: str | None
    ) -> None:
        """Replace a version's description (``None`` clears it)."""
        ...

    async def delete_model_version_tags(self, name: str, version: int, keys: Sequence[str]) -> None:
        """Delete tags of a version (keys it does not have are ignored)."""
        ...

    # pipelines

    async def create_pipeline(self, new: NewPipeline) -> None:
        """Record a running pipeline with its steps pending; ``Conflict`` if the id exists."""
        ...

    async def start_pipeline_step(
        self, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Mark a pending or running step running, in attempt ``attempt`` on run ``run_id``."""
        ...

    async def start_pipeline_step_run(
        self, run: NewRun, pipeline_id: str, step: str, attempt: int
    ) -> None:
        """Create ``run`` and mark the step running on it (at its start), all or nothing.

        :meth:`create_run` then :meth:`start_pipeline_step` in one write: on a database, one
        transaction; a store that needs two requests ends the run ``failed`` if the second
        fails.
        """
        ...

    async def complete_pipeline_step_run(
        self, pipeline_id: str, step: str, run_id: str, ended_at: float, result: str | None
    ) -> None:
        """End ``run_id`` completed and its running step completed with ``result``, at once.

        :meth:`end_run` (``stopped`` if asked to stop) then :meth:`end_pipeline_step`: all or
        nothing on a database; a store that needs two requests makes them in that order.
        """
        ...

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
        ...

    async def end_pipeline(
        self, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
    ) -> None:
        """Mark a running pipeline ended."""
        ...

    async def resume_pipeline(
        self, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
    ) -> PipelineDetail:
        """Reset the ``rerun`` steps to pending and mark the pipeline running on ``run_id``."""
        ...

    async def list_pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[PipelineInfo]:
        """Pipelines, newest first, narrowed by name and (computed) status."""
        ...

    async def get_pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline with its steps; ``NotFound`` naming the id if absent."""
        ...

    async def get_pipeline_step(self, pipeline_id: str, step: str) -> PipelineStep:
        """One step, as :meth:`get_pipeline` shows it; ``NotFound`` naming what is absent."""
        ...

    # alert rules and their history
    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Create the rule, or replace the definition of the rule with its name."""
        ...

    async def list_alerts(self) -> list[AlertRule]:
        """Every rule, by name."""
        ...

    async def get_alert(self, name: str) -> AlertRule:
        """One rule; ``NotFound`` listing the rules if absent."""
        ...

    async def delete_alert(self, name: str) -> None:
        """Delete a rule and its events; ``NotFound`` listing the rules if absent."""
        ...

    async def alert_events(self, name: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events of one rule (of every rule when ``name`` is ``None``), newest first."""
        ...

    # webhook subscriptions to the event stream
    async def subscribe(self, new: NewSubscription) -> Subscription:
        """Create a subscription; it gets the events committed after this call returns."""
        ...

    async def unsubscribe(self, subscription_id: int) -> None:
        """Delete a subscription and what of it is still queued; ``NotFound`` if absent."""
        ...

    async def list_subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        ...


@runtime_checkable
class ServerEvaluatedAlerts(Protocol):
    """A store whose server evaluates the alert rules and holds their secrets: a remote store.

    A :class:`~chachaml.client.remote.RemoteStore` has no
    :class:`~chachaml.store.server_state.ServerStore` methods: its server fires rules itself
    when metrics arrive and runs end, and evaluates every rule on request. It reads rules
    without their webhook URLs and secrets, so what needs them (muting a rule, which sets it
    again whole; sending its webhook a test event) is asked of the server too. Each raises
    ``NotFound`` for an unknown rule, as the server's store does.
    """

    async def check_alerts(
        self, now: float | None = None, lookback_hours: float | None = None
    ) -> list[AlertEvent]:
        """Have the server evaluate every rule now; the events fired (webhooks queued)."""
        ...

    async def mute_alert(self, name: str, muted: bool) -> AlertRule:
        """Have the server mute (or unmute) a rule; the rule as it now is."""
        ...

    async def send_test_alert(self, name: str) -> AlertTrial:
        """Have the server send a rule's webhook a test event now, as it delivers any event."""
        ...
