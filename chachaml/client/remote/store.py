"""``RemoteStore``: every method of the ``Store`` protocol as a request to a chachaml server.

Reads go to the versioned store API (``/api/store/v1/``), writes to the write API
(``/api/w/``); both are a wire schema of their own (see the server's OpenAPI document), so
this class translates between it and the Python protocol. What a call names as its author
(``user``, ``created_by``) is sent along but only a server in local mode honours it: in team
mode the token's user is the author, whoever the client says it is.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from collections.abc import Mapping, Sequence
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel

from chachaml.client.remote.artifacts import HttpArtifactStore
from chachaml.client.remote.connection import READ, Connection, quoted
from chachaml.client.remote.outbox import RemoteOutbox
from chachaml.client.remote.pipelines import RemotePipelines
from chachaml.errors import InvalidInput
from chachaml.records.alerts import Alert, AlertEvent, AlertRule, AlertTrial, NewAlert
from chachaml.records.metrics import MetricOutline
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
from chachaml.store.codec import series_of, unpack_chunk, unpack_positions

RUN = "/api/w/runs/"
EXPERIMENT = "/api/w/experiments/"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Alerts(BaseModel):
    alerts: list[Alert]


class _Events(BaseModel):
    events: list[AlertEvent]


class _Subscriptions(BaseModel):
    subscriptions: list[Subscription]


class _HeartbeatReply(BaseModel):
    stops: list[StopRequest] = []  # an older server replies {"ok": true} alone


def _rule(alert: Alert) -> AlertRule:
    """A rule as the server shows it: its webhook URL and secret are never read back."""
    return AlertRule(**alert.model_dump())


class RemoteStore(RemotePipelines):
    """A :class:`~chachaml.store.protocol.Store` that talks to a chachaml server.

    ``transport`` replaces the network (``httpx.ASGITransport(app)``: a server app in the
    same process, as the tests run it).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._conn = Connection(url, token, timeout=timeout, transport=transport)
        self.artifacts = HttpArtifactStore(self._conn)
        self.outbox = RemoteOutbox(self._conn)  # the server's events (wait_for_run, MCP)

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> RemoteStore:
        """Connect and check the server answers (``StoreUnavailable`` otherwise)."""
        store = cls(url, token, transport=transport)
        try:
            await store._conn.request("GET", "/health")
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def url(self) -> str:
        """The server's URL."""
        return self._conn.url

    async def close(self) -> None:
        """Close the connection pool."""
        await self._conn.close()

    async def change_marker(self) -> None:
        """Unknown over HTTP (the server does not say): answers are never cached."""
        return None

    # experiments

    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create or update an experiment."""
        body = {"name": name, "description": description, "owner": owner}
        result: Experiment = await self._conn.post("/api/w/experiments", body, Experiment)
        return result

    async def rename_experiment(
        self, experiment_id: int, name: str, user: str | None = None
    ) -> None:
        """Rename an experiment."""
        await self._conn.post(f"{EXPERIMENT}{experiment_id}/rename", {"name": name}, user=user)

    async def set_experiment_archived(
        self, experiment_id: int, archived: bool, user: str | None = None
    ) -> None:
        """Archive an experiment with its runs, or restore both."""
        body = {"archived": archived}
        await self._conn.post(f"{EXPERIMENT}{experiment_id}/archive", body, user=user)

    async def set_experiment_tag(
        self, experiment_id: int, key: str, value: str, user: str | None = None
    ) -> None:
        """Set one tag of an experiment."""
        body = {"key": key, "value": value}
        await self._conn.post(f"{EXPERIMENT}{experiment_id}/tags", body, user=user)

    async def delete_experiment_tag(
        self, experiment_id: int, key: str, user: str | None = None
    ) -> None:
        """Remove one tag of an experiment."""
        await self._conn.post(f"{EXPERIMENT}{experiment_id}/tags/delete", {"key": key}, user=user)

    async def get_experiment(self, name: str) -> Experiment:
        """One experiment."""
        result: Experiment = await self._conn.get(f"{READ}/experiments/{quote(name)}", Experiment)
        return result

    async def list_experiments(self) -> list[Experiment]:
        """Every experiment."""
        result: list[Experiment] = await self._conn.get(f"{READ}/experiments", list[Experiment])
        return result

    # runs: writes

    async def create_run(self, run: NewRun) -> None:
        """Start a run (a server with tokens attributes it to the token's user)."""
        body = run.model_dump(exclude={"experiment"}) | {"experiment": run.experiment}
        await self._conn.post("/api/w/runs", body)

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> None:
        """End a run (the server evaluates the alert rules on it)."""
        body = {"status": status, "error": error, "ended_at": ended_at}
        await self._conn.post(f"{RUN}{quote(run_id)}/end", body)

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> list[StopRequest]:
        """Keep runs alive (the server stamps its own time); the stop requests pending."""
        if not run_ids:
            return []
        reply: _HeartbeatReply = await self._conn.post(
            "/api/w/heartbeat", {"run_ids": list(run_ids)}, _HeartbeatReply
        )
        return reply.stops

    async def request_stop(
        self, run_id: str, user: str | None, reason: str | None, at: float
    ) -> StopRequest:
        """Ask a run to stop (the server attributes it to the token's user, stamps its time)."""
        found: StopRequest = await self._conn.post(
            f"{RUN}{quote(run_id)}/stop", {"reason": reason}, StopRequest, user=user
        )
        return found

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params."""
        await self._conn.post(f"{RUN}{quote(run_id)}/params", dict(params))

    async def set_tags(self, run_id: str, tags: Mapping[str, str], user: str | None = None) -> None:
        """Set tags."""
        await self._conn.post(f"{RUN}{quote(run_id)}/tags", dict(tags), user=user)

    async def set_note(self, run_id: str, note: str, user: str | None = None) -> None:
        """Replace the note."""
        await self._conn.post(f"{RUN}{quote(run_id)}/note", {"note": note}, user=user)

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset."""
        await self._conn.post(f"{RUN}{quote(run_id)}/datasets", dataset.model_dump())

    async def log_metrics(self, chunks: Sequence[MetricChunk]) -> None:
        """Send each run's chunks as one request of packed series, runs concurrently.

        The idempotency key of a run's request derives from the chunks' batch id, so the
        same batch sent again (a later flush after a failure) carries the same key, and the
        server, which records the batch id with the points, never stores a point twice.
        """
        by_run: dict[str, list[dict[str, str]]] = {}
        batches: dict[str, str | None] = {}
        for c in chunks:
            by_run.setdefault(c.run_id, []).append(
                {
                    "key": c.key,
                    "steps": base64.b64encode(c.steps).decode(),
                    "values": base64.b64encode(c.values).decode(),
                    "timestamps": base64.b64encode(c.timestamps).decode(),
                }
            )
            batches.setdefault(c.run_id, c.batch)
        failures: list[Exception] = []

        async def send(run_id: str, series: list[dict[str, str]]) -> None:
            batch = batches[run_id]
            key = None if batch is None else f"metrics-{batch}-{_short_hash(run_id)}"
            try:
                await self._conn.post(f"{RUN}{quote(run_id)}/metrics", {"series": series},
                                      key=key)  # fmt: skip
            except Exception as exc:  # reported below as one ChachamlError, not a group
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for run_id, series in by_run.items():
                tg.start_soon(send, run_id, series)
        if failures:
            raise failures[0]

    async def add_artifact(self, record: ArtifactRecord) -> None:
        """Record an artifact whose bytes were uploaded through :class:`HttpArtifactStore`."""
        body = record.model_dump(exclude={"run_id", "created_at"})
        await self._conn.post(f"{RUN}{quote(record.run_id)}/artifact-records", body)

    # runs: reads

    async def get_run(self, run_id: str) -> Run:
        """Everything about a run."""
        result: Run = await self._conn.get(f"{READ}/runs/{quote(run_id)}", Run)
        return result

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching a query."""
        body = query.model_dump(mode="json", exclude_defaults=True)  # an older server reads it
        response = await self._conn.request("POST", f"{READ}/runs/query", json=body)
        return [RunInfo.model_validate(r) for r in response.json()["runs"]]

    async def best_run(self, query: RunQuery) -> BestRun | None:
        """The first run of a metric-ordered query, with the metric's latest value and step."""
        key = query.order_by_metric
        if key is None:
            raise InvalidInput("best_run needs a query ordered by a metric")
        found = await self.query_runs(query.model_copy(update={"limit": 1, "offset": 0}))
        if not found:
            return None
        summary = (await self.metric_summaries(found[0].id))[key]
        assert summary.last is not None
        return BestRun(
            run=found[0], metric=key, value=summary.last, step=summary.step,
            direction=query.direction,
        )  # fmt: skip

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match."""
        body = query.model_dump(mode="json", exclude_defaults=True)
        response = await self._conn.request("POST", f"{READ}/runs/count", json=body)
        count: int = response.json()["count"]
        return count

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs."""
        body = {"run_ids": list(run_ids)}
        response = await self._conn.request("POST", f"{READ}/params", json=body)
        params: dict[str, dict[str, ParamValue]] = response.json()["params"]
        return params

    async def child_counts(self, parent_ids: Sequence[str]) -> dict[str, int]:
        """How many unarchived child runs each of these runs has (none: absent)."""
        body = {"run_ids": list(parent_ids)}
        response = await self._conn.request("POST", f"{READ}/runs/child-counts", json=body)
        counts: dict[str, int] = response.json()["counts"]
        return counts

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Each metric's summary."""
        path = f"{READ}/runs/{quote(run_id)}/metrics"
        result: dict[str, MetricSummary] = await self._conn.get(path, dict[str, MetricSummary])
        return result

    async def metric_history(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricSeries:
        """The points of a metric in a step range, fetched packed so that infinities survive."""
        return series_of(await self.metric_points(run_id, key, min_step=min_step,
                                                  max_step=max_step))  # fmt: skip

    async def metric_points(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricPoints:
        """The points of a metric in a step range as packed arrays."""
        path = f"{READ}/runs/{quote(run_id)}/series/{quoted(key)}"
        bounds = {"min_step": min_step, "max_step": max_step}
        query = {k: str(b) for k, b in bounds.items() if b is not None}
        packed = (await self._conn.request("GET", path, params=query)).json()
        raw = (base64.b64decode(packed[k]) for k in ("steps", "values", "timestamps"))
        steps, values, times = unpack_chunk(*raw)
        return MetricPoints(run_id=run_id, key=packed["key"], steps=steps, values=values,
                            timestamps=times, total=packed["total"],
                            first_step=packed["first_step"],
                            last_step=packed["last_step"])  # fmt: skip

    async def metric_outline(
        self, run_id: str, key: str, *, min_step: int | None = None,
        max_step: int | None = None, points: int,
    ) -> MetricOutline:  # fmt: skip
        """A step range of a metric for a chart of ``points`` points, packed."""
        path = f"{READ}/runs/{quote(run_id)}/outline/{quoted(key)}"
        bounds = {"min_step": min_step, "max_step": max_step, "points": points}
        query = {k: str(b) for k, b in bounds.items() if b is not None}
        packed = (await self._conn.request("GET", path, params=query)).json()
        raw = (base64.b64decode(packed[k]) for k in ("steps", "values", "timestamps"))
        steps, values, times = unpack_chunk(*raw)
        where = packed["positions"]
        outlined = unpack_positions(base64.b64decode(packed["outlined"]))
        return MetricOutline(run_id=run_id, key=packed["key"], steps=steps, values=values,
                             timestamps=times, total=packed["total"],
                             first_step=packed["first_step"], last_step=packed["last_step"],
                             in_range=packed["in_range"],
                             positions=None if where is None
                             else unpack_positions(base64.b64decode(where)),
                             outlined=outlined)  # fmt: skip

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact record."""
        path = f"{READ}/runs/{quote(run_id)}/artifacts/{quote(name)}"
        result: Artifact = await self._conn.get(path, Artifact)
        return result

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """A run's artifacts."""
        response = await self._conn.request("GET", f"{READ}/runs/{quote(run_id)}/artifacts")
        return [Artifact.model_validate(a) for a in response.json()["artifacts"]]

    # cleanup

    async def archive_runs(self, started_before: float, experiment: str | None) -> int:
        """Archive ended runs started before a time."""
        body = {"started_before": started_before, "experiment": experiment}
        count: int = (await self._conn.request("POST", "/api/w/archive", json=body)).json()["count"]
        return count

    async def delete_archived(self) -> tuple[int, list[str]]:
        """Delete archived runs; the server deletes their unused files, so no URIs return."""
        response = await self._conn.request("POST", "/api/w/archived/delete", json={})
        count: int = response.json()["count"]
        return count, []

    # registry

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Register a version."""
        body = new.model_dump(exclude={"model", "created_by"}) | {"name": new.model}
        result: ModelVersion = await self._conn.post("/api/w/models", body, ModelVersion,
                                                     user=new.created_by)  # fmt: skip
        return result

    async def list_models(self) -> list[Model]:
        """Every model."""
        result: list[Model] = await self._conn.get(f"{READ}/models", list[Model])
        return result

    async def get_model(self, name: str) -> ModelDetail:
        """A model in full."""
        result: ModelDetail = await self._conn.get(f"{READ}/models/{quoted(name)}", ModelDetail)
        return result

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions, newest first, optionally of one stage."""
        versions = (await self.get_model(name)).versions
        return [v for v in versions if stage is None or v.stage == stage]

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version."""
        path = f"{READ}/models/{quoted(name)}/versions/{version}"
        result: ModelVersion = await self._conn.get(path, ModelVersion)
        return result

    async def promote_model_version(
        self,
        name: str,
        version: int,
        stage: Stage,
        user: str,
        reason: str | None = None,
        archive_existing: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage."""
        path = f"/api/w/models/{quoted(name)}/versions/{version}/promote"
        body = {"stage": stage, "reason": reason, "archive_existing": archive_existing}
        result: ModelVersion = await self._conn.post(path, body, ModelVersion, user=user)
        return result

    async def set_model_alias(self, name: str, alias: str, version: int, user: str) -> None:
        """Point an alias at a version."""
        body = {"alias": alias, "version": version}
        await self._conn.post(f"/api/w/models/{quoted(name)}/aliases", body, user=user)

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Remove an alias."""
        path = f"/api/w/models/{quoted(name)}/aliases/{quoted(alias)}/delete"
        await self._conn.post(path, {}, user=user)

    async def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Set tags on a model."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/tags", dict(tags))

    async def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str]
    ) -> None:
        """Set tags on a model version."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/versions/{version}/tags", dict(tags))

    async def set_model_note(self, name: str, note: str) -> None:
        """Replace a model's note."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/note", {"note": note})

    async def create_model(
        self, name: str, user: str, note: str | None = None, tags: Mapping[str, str] | None = None
    ) -> ModelDetail:
        """Create a model with no versions."""
        body = {"note": note, "tags": dict(tags or {})}
        path = f"/api/w/models/{quoted(name)}/create"
        result: ModelDetail = await self._conn.post(path, body, ModelDetail, user=user)
        return result

    async def rename_model(self, name: str, new_name: str) -> None:
        """Rename a model."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/rename", {"new_name": new_name})

    async def delete_model(self, name: str) -> None:
        """Delete a model."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/delete", {})

    async def delete_model_tags(self, name: str, keys: Sequence[str]) -> None:
        """Delete tags of a model."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/tags/delete", {"keys": list(keys)})

    async def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version."""
        await self._conn.post(f"/api/w/models/{quoted(name)}/versions/{version}/delete", {})

    async def set_model_version_description(
        self, name: str, version: int, description: str | None
    ) -> None:
        """Replace a version's description."""
        path = f"/api/w/models/{quoted(name)}/versions/{version}/description"
        await self._conn.post(path, {"description": description})

    async def delete_model_version_tags(self, name: str, version: int, keys: Sequence[str]) -> None:
        """Delete tags of a version."""
        path = f"/api/w/models/{quoted(name)}/versions/{version}/tags/delete"
        await self._conn.post(path, {"keys": list(keys)})

    # pipelines: the rest in RemotePipelines

    async def start_pipeline_step_run(
        self, run: NewRun, pipeline_id: str, step: str, attempt: int
    ) -> None:
        """Start the run, then mark the step running: two requests (the run fails if one does)."""
        await self.create_run(run)
        try:
            await self.start_pipeline_step(pipeline_id, step, run.id, attempt, run.started_at)
        except BaseException as exc:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self.end_run(run.id, "failed", f"{type(exc).__name__}: {exc}", time.time())
            raise

    async def complete_pipeline_step_run(
        self, pipeline_id: str, step: str, run_id: str, ended_at: float, result: str | None
    ) -> None:
        """End the run completed, then the step: two requests."""
        await self.end_run(run_id, "completed", None, ended_at)
        await self.end_pipeline_step(pipeline_id, step, "completed", ended_at, None, result)

    # alert rules: the server evaluates them

    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Create or replace a rule (its webhook URL and secret are not read back)."""
        body = new.model_dump(mode="json", exclude={"created_by"})
        alert: Alert = await self._conn.post("/api/w/alerts", body, Alert, user=new.created_by)
        return _rule(alert)

    async def list_alerts(self) -> list[AlertRule]:
        """Every rule, by name."""
        found: _Alerts = await self._conn.get(f"{READ}/alerts", _Alerts)
        return [_rule(a) for a in found.alerts]

    async def get_alert(self, name: str) -> AlertRule:
        """One rule."""
        return _rule(await self._conn.get(f"{READ}/alerts/{quoted(name)}", Alert))

    async def delete_alert(self, name: str) -> None:
        """Delete a rule and its events."""
        await self._conn.post("/api/w/alerts/delete", {"name": name})

    async def alert_events(self, name: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events of one rule (or every rule), newest first."""
        body = {"alert": name, "limit": limit}
        found: _Events = await self._conn.post(f"{READ}/alerts/events", body, _Events)
        return found.events

    async def subscribe(self, new: NewSubscription) -> Subscription:
        """Have the server subscribe a URL (it checks the URL against its own settings)."""
        body = {"url": new.url, "types": list(new.types), "secret": new.secret}
        found: Subscription = await self._conn.post(
            "/api/w/subscriptions", body, Subscription, user=new.created_by
        )
        return found

    async def unsubscribe(self, subscription_id: int) -> None:
        """Delete a subscription of the server's."""
        await self._conn.post("/api/w/subscriptions/delete", {"id": subscription_id})

    async def list_subscriptions(self) -> list[Subscription]:
        """The server's subscriptions."""
        found: _Subscriptions = await self._conn.get(f"{READ}/subscriptions", _Subscriptions)
        return found.subscriptions

    async def check_alerts(
        self, now: float | None = None, lookback_hours: float | None = None
    ) -> list[AlertEvent]:
        """Have the server evaluate every rule now; the events fired (webhooks queued there)."""
        body: dict[str, float] = {} if now is None else {"now": now}
        if lookback_hours is not None:
            body["lookback_hours"] = lookback_hours
        found: _Events = await self._conn.post("/api/w/alerts/check", body, _Events)
        return found.events

    async def mute_alert(self, name: str, muted: bool) -> AlertRule:
        """Have the server mute or unmute a rule (only it holds the webhook URL and secret)."""
        body = {"name": name, "muted": muted}
        return _rule(await self._conn.post("/api/w/alerts/mute", body, Alert))

    async def send_test_alert(self, name: str) -> AlertTrial:
        """Have the server send a rule's webhook a test event, with its delivery settings."""
        trial: AlertTrial = await self._conn.post("/api/w/alerts/test", {"name": name}, AlertTrial)
        return trial
