"""The ``Store`` protocol: what every backend (SQLite, PostgreSQL) must do, and how.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeGuard

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
from chachaml.store.alert_protocol import AlertServerStore, AlertStore
from chachaml.store.api_protocol import ApiStore
from chachaml.store.pipeline_protocol import PipelineStore
from chachaml.store.registry_protocol import RegistryStore


class Store(RegistryStore, PipelineStore, AlertStore, Protocol):
    """Async persistence for experiments, runs and their data, models, pipelines, alert rules.

    What training code and every operation in ``chachaml.tools`` may ask of any store: a
    database, or a server over HTTP (:class:`~chachaml.client.remote.RemoteStore`).
    """

    @property
    def url(self) -> str:
        """The URL the store was opened with (no password)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
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
        """Every experiment, most recently active first."""
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

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> None:
        """Record that these running runs are alive at ``at``."""
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
        """How many runs match the query, ignoring limit and offset."""
        ...

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs at once, by run id."""
        ...

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Latest value, step and range of each metric of a run."""
        ...

    async def metric_history(self, run_id: str, key: str) -> MetricSeries:
        """Every point of one metric, ordered by step; ``NotFound`` if never logged."""
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
        """Delete archived runs and their rows; returns how many, and artifact URIs now unused.

        The caller sweeps those URIs' files (:func:`~chachaml.store.artifacts.sweep_unused`);
        a remote store returns none, as its server has swept them already.
        """
        ...


class ServerStore(Store, AlertServerStore, ApiStore, Protocol):
    """A database a server runs on: the ``Store`` plus the server's own state.

    Tokens, idempotency keys, alert firing and the webhook delivery queue: state a remote
    client never touches directly.
    """


def is_server_store(store: Store) -> TypeGuard[ServerStore]:
    """Whether a store is a database a server can run on, rather than a remote store.

    One attribute, not ``isinstance`` against the protocol: a runtime protocol check walks
    all of its sixty-odd members (milliseconds), and this runs on every metric batch a server
    receives. The ``ServerStore`` methods come together: a database has them all, a remote
    store none.
    """
    return callable(getattr(store, "fire_alert", None))
