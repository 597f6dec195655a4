"""A ``Store`` over the HTTP API, for ``CHACHAML_STORE=http(s)://host:port``.

The tracking client runs unchanged on top of it: writes go to ``/api/w/``, reads to
``/api/store/``, artifact bytes through ``/api/w/objects`` and ``/api/store/objects``
(:class:`HttpArtifactStore`). The metric flusher's chunks for a run travel as one request
of packed series. Writes carry an ``Idempotency-Key`` and are retried on connection
errors and 503s with the same key. A metric batch's key derives from the batch id the
tracking runtime gives its chunks, so the batch keeps its key when it is sent again at the
next ``flush()`` after a failure; the server records the id with the points, so a retry
never stores a point twice, even after a crash.

What the API does not offer (pipelines, alert rules, registry aliases/tags/notes, token
administration) raises ``StoreUnavailable`` saying so. Alert rules are evaluated by
the server when metrics arrive and runs end, so the client sees no rules to evaluate.
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import anyio
import httpx
from pydantic import TypeAdapter

from chachaml.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
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
)
from chachaml.records.pipelines import NewPipeline, PipelineDetail, PipelineInfo
from chachaml.records.registry import Model, ModelDetail, ModelVersion, NewModelVersion, Stage
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
from chachaml.store import Store, open_store
from chachaml.store.artifacts import StoredObject, corrupt_object, uri_digest, verified
from chachaml.store.codec import unpack_chunk
from chachaml.store.protocol import PipelineEnd, StepEnd
from chachaml.store.server_state import IdempotentReply, Scope, TokenInfo, TokenOwner

T = TypeVar("T")
ATTEMPTS = 4
CHUNK = 1 << 20
ERRORS: Mapping[int, type[Exception]] = {404: NotFound, 409: Conflict, 413: InvalidInput,
                                         422: InvalidInput}  # fmt: skip


async def open_any_store(url: str, *, token: str | None = None) -> Store:
    """The store a URL names: a server's HTTP API, or a database.

    ``http(s)://`` is a chachaml server reached with ``token``; anything else is the
    database :func:`chachaml.store.open_store` opens.
    """
    if url.startswith(("http://", "https://")):
        return await RemoteStore.open(url, token)
    return await open_store(url)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500] or response.reason_phrase
    if response.status_code in (401, 403):
        if response.status_code == 401:
            raise Unauthorized(f"the server at {response.url.host} refused the token: {message}")
        raise Forbidden(f"the server at {response.url.host} refused the request: {message}")
    kind = ERRORS.get(response.status_code, StoreUnavailable)
    raise kind(message)


class RemoteStore:
    """A :class:`~chachaml.store.protocol.Store` that talks to a chachaml server."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self._url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self._url, headers=headers, timeout=timeout)
        self.artifacts = HttpArtifactStore(self)

    @classmethod
    async def open(cls, url: str, token: str | None = None) -> RemoteStore:
        """Connect and check the server answers (``StoreUnavailable`` otherwise)."""
        store = cls(url, token)
        try:
            await store.request("GET", "/health")
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def url(self) -> str:
        """The server's URL."""
        return self._url

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried with one idempotency key (``key``, else a new one).

        Retried on connection errors, 503s and 409s for an earlier attempt in progress.
        """
        headers = {"Idempotency-Key": key or uuid.uuid4().hex} if method == "POST" else {}
        headers.update(kwargs.pop("headers", None) or {})
        once = hasattr(kwargs.get("content"), "__aiter__")  # a stream cannot be sent again
        delay = 0.2
        for attempt in range(ATTEMPTS):
            last = once or attempt == ATTEMPTS - 1
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                if last:
                    raise StoreUnavailable(f"cannot reach {self._url}: {exc!r}") from exc
            else:
                in_progress = response.status_code == 409 and "in progress" in response.text
                if in_progress and last:  # transient: the batch is kept and sent again later
                    raise StoreUnavailable(
                        f"the server at {self._url} is still working on an earlier attempt of"
                        f" {method} {path} (or it died mid-request and the claim has not"
                        " expired yet); will retry"
                    )
                if not (response.status_code == 503 or in_progress) or last:
                    _raise_for(response)
                    return response
            await anyio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def _get(self, path: str, kind: Any) -> Any:
        return TypeAdapter(kind).validate_json((await self.request("GET", path)).content)

    async def _post(self, path: str, body: Any, kind: Any = None, *, key: str | None = None) -> Any:
        response = await self.request("POST", path, json=body, key=key)
        return None if kind is None else TypeAdapter(kind).validate_json(response.content)

    # experiments

    async def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create or update an experiment."""
        body = {"name": name, "description": description, "owner": owner}
        result: Experiment = await self._post("/api/w/experiments", body, Experiment)
        return result

    async def get_experiment(self, name: str) -> Experiment:
        """One experiment."""
        result: Experiment = await self._get(f"/api/store/experiments/{quote(name)}", Experiment)
        return result

    async def list_experiments(self) -> list[Experiment]:
        """Every experiment."""
        result: list[Experiment] = await self._get("/api/store/experiments", list[Experiment])
        return result

    # runs: writes

    async def create_run(self, run: NewRun) -> None:
        """Start a run (the server attributes it to the token's user)."""
        body = run.model_dump(exclude={"experiment"}) | {"experiment": run.experiment}
        await self._post("/api/w/runs", body)

    async def end_run(
        self, run_id: str, status: EndStatus, error: str | None, ended_at: float
    ) -> None:
        """End a run."""
        body = {"status": status, "error": error, "ended_at": ended_at}
        await self._post(f"/api/w/runs/{quote(run_id)}/end", body)

    async def heartbeat(self, run_ids: Sequence[str], at: float) -> None:
        """Keep runs alive (the server stamps its own time)."""
        if run_ids:
            await self._post("/api/w/heartbeat", {"run_ids": list(run_ids)})

    async def log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Record params."""
        await self._post(f"/api/w/runs/{quote(run_id)}/params", dict(params))

    async def set_tags(self, run_id: str, tags: Mapping[str, str], user: str | None = None) -> None:
        """Set tags (the server records its caller as who set them, not ``user``)."""
        await self._post(f"/api/w/runs/{quote(run_id)}/tags", dict(tags))

    async def set_note(self, run_id: str, note: str, user: str | None = None) -> None:
        """Replace the note (the server records its caller as the author, not ``user``)."""
        await self._post(f"/api/w/runs/{quote(run_id)}/note", {"note": note})

    async def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Attach a dataset."""
        await self._post(f"/api/w/runs/{quote(run_id)}/datasets", dataset.model_dump())

    async def log_metrics(self, chunks: Sequence[MetricChunk]) -> None:
        """Send each run's chunks as one request of packed series, runs concurrently.

        The idempotency key of a run's request derives from the chunks' batch id, so the
        same batch sent again (a later flush after a failure) carries the same key.
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
                await self._post(f"/api/w/runs/{quote(run_id)}/metrics", {"series": series},
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
        await self._post(f"/api/w/runs/{quote(record.run_id)}/artifact-records", body)

    # runs: reads

    async def get_run(self, run_id: str) -> Run:
        """Everything about a run."""
        result: Run = await self._get(f"/api/store/runs/{quote(run_id)}", Run)
        return result

    async def query_runs(self, query: RunQuery) -> list[RunInfo]:
        """Runs matching a query."""
        response = await self.request("POST", "/api/store/runs/query",
                                      json=query.model_dump(mode="json"))  # fmt: skip
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
        response = await self.request("POST", "/api/store/runs/count",
                                      json=query.model_dump(mode="json"))  # fmt: skip
        count: int = response.json()["count"]
        return count

    async def run_params(self, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
        """Params of several runs."""
        response = await self.request("POST", "/api/store/params", json={"run_ids": list(run_ids)})
        params: dict[str, dict[str, ParamValue]] = response.json()["params"]
        return params

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Each metric's summary."""
        kind = dict[str, MetricSummary]
        result: dict[str, MetricSummary] = await self._get(
            f"/api/store/runs/{quote(run_id)}/metrics", kind
        )
        return result

    async def metric_history(self, run_id: str, key: str) -> MetricSeries:
        """Every point of a metric, fetched packed so that infinities survive."""
        path = f"/api/store/runs/{quote(run_id)}/series/{quote(key, safe='')}"
        packed = (await self.request("GET", path)).json()
        raw = (base64.b64decode(packed[k]) for k in ("steps", "values", "timestamps"))
        steps, values, times = unpack_chunk(*raw)
        return MetricSeries(run_id=run_id, key=packed["key"], steps=list(steps),
                            values=[None if math.isnan(x) else x for x in values],
                            timestamps=list(times))  # fmt: skip

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact record."""
        path = f"/api/store/runs/{quote(run_id)}/artifacts/{quote(name)}"
        result: Artifact = await self._get(path, Artifact)
        return result

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """A run's artifacts."""
        response = await self.request("GET", f"/api/store/runs/{quote(run_id)}/artifacts")
        return [Artifact.model_validate(a) for a in response.json()["artifacts"]]

    # cleanup

    async def archive_runs(self, started_before: float, experiment: str | None) -> int:
        """Archive ended runs started before a time."""
        body = {"started_before": started_before, "experiment": experiment}
        count: int = (await self.request("POST", "/api/w/archive", json=body)).json()["count"]
        return count

    async def delete_archived(self) -> tuple[int, list[str]]:
        """Delete archived runs; the server deletes their unused files, so no URIs return."""
        response = await self.request("POST", "/api/w/archived/delete", json={})
        count: int = response.json()["count"]
        return count, []

    # registry

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Register a version (attributed to the token's user)."""
        body = new.model_dump(exclude={"model", "created_by"}) | {"name": new.model}
        result: ModelVersion = await self._post("/api/w/models", body, ModelVersion)
        return result

    async def list_models(self) -> list[Model]:
        """Every model."""
        result: list[Model] = await self._get("/api/store/models", list[Model])
        return result

    async def get_model(self, name: str) -> ModelDetail:
        """A model in full."""
        result: ModelDetail = await self._get(
            f"/api/store/models/{quote(name, safe='')}", ModelDetail
        )
        return result

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions, newest first, optionally of one stage."""
        versions = (await self.get_model(name)).versions
        return [v for v in versions if stage is None or v.stage == stage]

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version."""
        path = f"/api/store/models/{quote(name, safe='')}/versions/{version}"
        result: ModelVersion = await self._get(path, ModelVersion)
        return result

    async def promote_model_version(
        self, name: str, version: int, stage: Stage, user: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to a stage (attributed to the token's user)."""
        path = f"/api/w/models/{quote(name, safe='')}/versions/{version}/promote"
        result: ModelVersion = await self._post(
            path, {"stage": stage, "reason": reason}, ModelVersion
        )
        return result

    # alerts: evaluated by the server

    async def list_alerts(self) -> list[AlertRule]:
        """No rules on the client side: the server evaluates them as metrics arrive."""
        return []

    # what the HTTP API does not offer

    def _unsupported(self, what: str) -> NoReturn:
        raise StoreUnavailable(
            f"{what} is not available through the HTTP API ({self._url}); use the server's"
            " web UI or MCP tools, or point CHACHAML_STORE at the database"
        )

    async def set_model_alias(self, name: str, alias: str, version: int, user: str) -> None:
        """Not offered over HTTP."""
        self._unsupported("setting a model alias")

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Not offered over HTTP."""
        self._unsupported("deleting a model alias")

    async def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Not offered over HTTP."""
        self._unsupported("tagging a model")

    async def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str]
    ) -> None:
        """Not offered over HTTP."""
        self._unsupported("tagging a model version")

    async def set_model_note(self, name: str, note: str) -> None:
        """Not offered over HTTP."""
        self._unsupported("a model note")

    async def create_pipeline(self, new: NewPipeline) -> None:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def start_pipeline_step(
        self, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def end_pipeline_step(
        self,
        pipeline_id: str,
        step: str,
        status: StepEnd,
        ended_at: float,
        error: str | None = None,
        result: str | None = None,
    ) -> None:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def end_pipeline(
        self, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
    ) -> None:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def resume_pipeline(
        self, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
    ) -> PipelineDetail:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def list_pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[PipelineInfo]:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def get_pipeline(self, pipeline_id: str) -> PipelineDetail:
        """Not offered over HTTP."""
        self._unsupported("pipelines")

    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def get_alert(self, name: str) -> AlertRule:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def delete_alert(self, name: str) -> None:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def fire_alert(self, name: str, event: NewAlertEvent) -> AlertEvent | None:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def record_delivery(
        self,
        event_id: int,
        attempt: DeliveryAttempt,
        status: DeliveryStatus,
        retry_at: float | None = None,
    ) -> None:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def claim_deliveries(
        self, now: float, lease_until: float, limit: int
    ) -> list[PendingDelivery]:
        """Not offered over HTTP: the server delivers webhooks itself."""
        self._unsupported("webhook delivery")

    async def pending_deliveries(self) -> tuple[int, float | None]:
        """Not offered over HTTP: the server delivers webhooks itself."""
        self._unsupported("webhook delivery")

    async def alert_events(self, name: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Not offered over HTTP."""
        self._unsupported("alert history")

    async def stale_experiments(
        self, experiment: str | None, cutoff: float
    ) -> list[StaleExperiment]:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def silent_runs(self, experiment: str | None, cutoff: float) -> list[SilentRun]:
        """Not offered over HTTP."""
        self._unsupported("alert rules")

    async def create_token(self, user: str, scope: Scope, token_hash: str, hint: str = "") -> int:
        """Not offered over HTTP: tokens are made against the server's own store."""
        self._unsupported("creating tokens")

    async def find_token(self, token_hash: str) -> TokenOwner | None:
        """Not offered over HTTP."""
        self._unsupported("token lookup")

    async def has_tokens(self) -> bool:
        """Not offered over HTTP."""
        self._unsupported("token lookup")

    async def list_tokens(self) -> list[TokenInfo]:
        """Not offered over HTTP: tokens are listed from the server's own store."""
        self._unsupported("listing tokens")

    async def revoke_token(self, token_id: int) -> TokenInfo:
        """Not offered over HTTP: tokens are revoked in the server's own store."""
        self._unsupported("revoking tokens")

    async def claim_idempotency_key(
        self, user: str, key: str, request_hash: str, lease: float = 60.0
    ) -> IdempotentReply | None:
        """Not offered over HTTP."""
        self._unsupported("idempotency keys")

    async def finish_idempotency_key(self, user: str, key: str, status: int, body: str) -> None:
        """Not offered over HTTP."""
        self._unsupported("idempotency keys")

    async def release_idempotency_key(self, user: str, key: str) -> None:
        """Not offered over HTTP."""
        self._unsupported("idempotency keys")


class HttpArtifactStore:
    """An :class:`~chachaml.store.artifacts.ArtifactStore` that uploads to the server."""

    def __init__(self, store: RemoteStore) -> None:
        self._store = store

    @property
    def root(self) -> str:
        """The server's object endpoint."""
        return f"{self._store.url}/api/store/objects"

    async def _upload(self, content: bytes | AsyncIterator[bytes]) -> StoredObject:
        response = await self._store.request(
            "POST",
            "/api/w/objects",
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        data = response.json()
        return StoredObject(uri=data["uri"], sha256=data["sha256"], size=data["size"])

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Upload bytes."""
        return await self._upload(data)

    async def put_file(self, path: Path) -> StoredObject:
        """Upload a file, streaming it."""

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as f:
                while block := await f.read(CHUNK):
                    yield block

        return await self._upload(chunks())

    async def get_bytes(self, uri: str) -> bytes:
        """Download an object."""
        return (await self._store.request("GET", f"/api/store/objects/{uri}")).content

    async def open_stream(self, uri: str, *, verify: bool = True) -> AsyncIterator[bytes]:
        """Download an object block by block, checking its hash before the last block."""
        url = self._store.url
        http = self._store._http
        try:
            response = await http.send(http.build_request("GET", f"/api/store/objects/{uri}"),
                                       stream=True)  # fmt: skip
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach {url}: {exc!r}") from exc
        if not response.is_success:
            await response.aread()
            await response.aclose()
            _raise_for(response)

        async def blocks() -> AsyncIterator[bytes]:
            try:
                async for block in response.aiter_bytes(CHUNK):
                    yield block
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"cannot reach {url}: {exc!r}") from exc
            finally:
                await response.aclose()

        if not verify:
            return blocks()
        return verified(blocks(), uri_digest(uri), lambda: corrupt_object(uri))

    async def copy_to(self, uri: str, dest: Path) -> None:
        """Download an object to a file, streaming it (the file appears once complete)."""
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
        try:
            async with await anyio.open_file(tmp, "wb") as fh:
                async for block in await self.open_stream(uri):
                    await fh.write(block)
            await anyio.Path(tmp).replace(dest)
        finally:
            await anyio.Path(tmp).unlink(missing_ok=True)

    async def delete(self, uri: str) -> None:
        """Not offered over HTTP."""
        self._store._unsupported("deleting artifact objects")

    async def contains(self, obj: StoredObject) -> bool:
        """Not offered over HTTP."""
        self._store._unsupported("checking for an artifact object")

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the server says its stores are ready."""
        await self._store.request("GET", "/readyz")
