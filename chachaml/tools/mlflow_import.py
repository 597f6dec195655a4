"""Importing an MLflow tracking store into chachaml (``chachaml import mlflow --from URI``).

The source is whatever MLflow's own client opens: a ``mlruns`` folder (a path or a ``file:``
URI), a database URL such as ``sqlite:///mlflow.db``, or an ``http://`` tracking server. It
is read through ``MlflowClient`` and MLflow's artifact repositories only, so every backend
MLflow supports reads the same way, and ``mlflow`` stays an optional extra.

Identity, idempotence and resuming:

- A run keeps its MLflow id (both are 32 hex characters): the MLflow run id *is* the mapping,
  and reads through chachaml's MLflow protocol answer with the ids people already have.
- A run is written step by step (created with its tags, params, metric histories, datasets,
  artifacts file by file, note, end) and the tag :data:`MARKER` is set last. A run carrying
  it is complete and is not written again; one without it (an interrupted import) is
  completed, every step being idempotent: a param of the same value is no change, metric
  chunks carry batch ids the store keeps once per run, datasets and artifacts already held
  are not added again. Nothing is duplicated, whenever the import stopped.
- A model version carries MLflow's version number as the tag :data:`VERSION_TAG`, written in
  its registering transaction; versions already carrying it are not registered again.
- An MLflow 3 **logged model** of an imported run becomes a logged model of that run in the
  shape MLflow's protocol serves (:mod:`chachaml.tools.logged_models`): its files under the
  model's name, then its record, then the index tag, which marks it complete. Its chachaml id
  is derived from MLflow's (the same on every import) and MLflow's is kept as the record's tag
  :data:`MODEL_ID_TAG`; a version registered from ``models:/<MLflow id>`` is registered from
  ``models:/<chachaml id>``. A model logged outside any run comes over onto a run of its own
  (id derived from MLflow's model id, named after the model, ended with the model's status),
  as MLflow's protocol keeps such a model. A second model of one name on a run gets a folder
  of its own (:func:`~chachaml.tools.logged_models.folder_for`).
- At the end everything selected is counted on both sides (:class:`ImportReport`).

Parents are imported before their children; a parent outside the import keeps its id in the
``mlflow.parentRunId`` tag. MLflow's deleted experiments and runs are not imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from chachaml.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from chachaml.records.registry import ModelDetail, Stage
from chachaml.records.runs import EndStatus, MetricChunk, Run
from chachaml.records.validation import MAX_TAG_VALUE
from chachaml.store.artifacts import ArtifactStore
from chachaml.store.codec import make_chunk
from chachaml.store.protocol import Store
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import logged_models as model_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.metrics import log_metrics
from chachaml.tools.mlflow_counts import MARKER, Counts, ImportReport, held_counts
from chachaml.tools.mlflow_source import (
    PARENT,
    dataset_of,
    mlflow_defaults,
    open_source,
    pages,
    parents_first,
    seconds,
    source_label,
)

VERSION_TAG = "mlflow.version"  # MLflow's number of an imported model version
SOURCE_TAG = "mlflow.source"  # MLflow's source URI of an imported model version
MODEL_ID_TAG = "mlflow.importedModelId"  # MLflow's id of an imported logged model
RUN_NAME, USER, NOTE = "mlflow.runName", "mlflow.user", "mlflow.note.content"
FIELD_TAGS = frozenset({RUN_NAME, USER, NOTE, PARENT})  # chachaml run fields, not tags
ENDED: dict[str, EndStatus] = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "killed"}
STAGES: dict[str, Stage] = {
    "none": "none",
    "staging": "staging",
    "production": "production",
    "archived": "archived",
}
STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
MODEL_STATUSES = dict(zip(("PENDING", "READY", "FAILED"), STATUSES, strict=True))  # MLflow's
DEFAULT_EXPERIMENT = ("0", "default")  # MLflow's Default is chachaml's default experiment
IMPORTER = "chachaml import"
CHUNK_POINTS = 100_000  # points per stored chunk
BATCH_POINTS = 500_000  # points per metric transaction

Progress = Callable[[str, int, int], None]


def imported_model_id(run_id: str, mlflow_id: str) -> str:
    """The chachaml id of an imported logged model: the same on every import."""
    return model_ops.new_model_id(run_id, hashlib.sha256(mlflow_id.encode()).hexdigest()[:8])


def holder_run_id(mlflow_id: str) -> str:
    """The id of the run of its own of a model logged outside any run: the same every import."""
    return hashlib.sha256(f"mlflow-logged-model:{mlflow_id}".encode()).hexdigest()[:32]


async def _held_run(store: Store, run_id: str) -> Run | None:
    try:
        return await store.get_run(run_id)
    except NotFound:
        return None


@dataclass
class _RunFiles:
    """Where a run's artifacts were and which names it has (to resolve model versions)."""

    artifact_uri: str
    names: set[str]


@dataclass(frozen=True)
class _Registered:
    """What a version is registered from: a run, a path in it, the source it keeps (if any)."""

    run_id: str
    artifact: str
    source: str | None


class MlflowImport:
    """One import of an MLflow store into a chachaml store and artifact store."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        source: Any,
        label: str,
        progress: Progress | None = None,
        tracking_uri: str | None = None,
    ) -> None:
        self.store = store
        self.tracking_uri = tracking_uri  # where MLflow's artifact repositories resolve URIs
        self.artifacts = artifacts
        self.mlflow = source
        self.label = label
        self.progress = progress or (lambda label, done, total: None)
        self.report = ImportReport(source=label)
        self.run_files: dict[str, _RunFiles] = {}
        self.logged: dict[str, model_ops.LoggedModel] = {}  # imported models by MLflow id
        self.holders: list[str] = []  # the runs of their own of models logged outside runs
        self.copied_files = 0
        self.listed_files = 0

    async def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call of MLflow's (synchronous) client, off the event loop; its errors as ours."""
        from mlflow.exceptions import MlflowException

        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except MlflowException as exc:
            raise StoreUnavailable(f"reading {self.label}: {exc.message}") from exc

    # experiments

    async def experiments(self, names: Sequence[str]) -> dict[str, str]:
        """The selected active experiments, created in chachaml: chachaml name by MLflow id."""
        from mlflow.entities import ViewType

        found = await self._read(
            pages, self.mlflow.search_experiments, view_type=ViewType.ACTIVE_ONLY
        )
        if names:
            missing = sorted(set(names) - {e.name for e in found})
            if missing:
                listing = ", ".join(sorted(e.name for e in found)) or "none"
                raise InvalidInput(
                    f"no MLflow experiment named {', '.join(map(repr, missing))}"
                    f" (its experiments: {listing})"
                )
            found = [e for e in found if e.name in names]
        held = {e.name for e in await experiment_ops.list_experiments(self.store)}
        chosen: dict[str, str] = {}
        for exp in found:
            name = DEFAULT_EXPERIMENT[1] if exp.experiment_id == DEFAULT_EXPERIMENT[0] else exp.name
            self.report.before.experiments += name in held
            description = exp.tags.get(NOTE) or None
            await experiment_ops.create_experiment(self.store, name, description)
            chosen[exp.experiment_id] = name
        self.report.read.experiments = len(chosen)
        return chosen

    # runs

    async def runs(self, experiments: Mapping[str, str]) -> list[str]:
        """Import every active run of the experiments; their ids."""
        from mlflow.entities import ViewType

        runs: list[Any] = []
        if experiments:
            runs = await self._read(
                pages,
                self.mlflow.search_runs,
                experiment_ids=list(experiments),
                run_view_type=ViewType.ACTIVE_ONLY,
                order_by=["attributes.start_time ASC"],
            )
        ordered = parents_first(runs)
        for i, run in enumerate(ordered, 1):
            await self.run(run, experiments[run.info.experiment_id])
            self.progress("runs", i, len(ordered))
        return [r.info.run_id for r in ordered]

    async def run(self, run: Any, experiment: str) -> None:
        """Import one run, or complete a run an interrupted import left without its marker."""
        rid: str = run.info.run_id
        mlflow_tags: dict[str, str] = dict(run.data.tags)
        params: dict[str, str] = dict(run.data.params)
        histories = {
            key: await self._read(self.mlflow.get_metric_history, rid, key)
            for key in sorted(run.data.metrics)
        }
        files = await self._read(self._list_files, rid, "")
        self.run_files[rid] = _RunFiles(run.info.artifact_uri or "", {f.path for f in files})
        datasets = [dataset_of(d) for d in (run.inputs.dataset_inputs if run.inputs else [])]
        parent = mlflow_tags.get(PARENT) or None
        if parent is not None and await _held_run(self.store, parent) is None:
            parent = None  # not imported: the id stays as a tag
        tags = {  # an index tag of chachaml's (a chachaml source) is remade with its model
            k: val for k, val in mlflow_tags.items()
            if k not in FIELD_TAGS and not k.startswith(model_ops.TAG)
        }  # fmt: skip
        if parent is None and mlflow_tags.get(PARENT):
            tags[PARENT] = mlflow_tags[PARENT]
        for key, val in list(tags.items()):
            if len(val) > MAX_TAG_VALUE:
                tags[key] = val[:MAX_TAG_VALUE]
                self.report.notes.append(
                    f"run {rid}: tag {key!r} cut to {MAX_TAG_VALUE} of its {len(val)} characters"
                )
        self.report.read.add(
            Counts(
                runs=1,
                params=len(params),
                tags=len(tags),
                metric_points=sum(len(h) for h in histories.values()),
                datasets=len(datasets),
                artifacts=len(files),
            )
        )
        held = await _held_run(self.store, rid)
        self.report.before.add(held_counts(held))
        self.listed_files += len(files)
        if held is not None and MARKER in held.tags:
            self.copied_files += len(files)
            return
        started = seconds(run.info.start_time) or 0.0
        if held is None:
            name = run.info.run_name or mlflow_tags.get(RUN_NAME) or None
            new = run_ops.new_run(
                experiment,
                name,
                created_by=mlflow_tags.get(USER) or run.info.user_id or "unknown",
                run_id=rid,
                started_at=started,
                parent_id=parent,
                tags=tags,
            )
            await self.store.create_run(new)  # not start_run: a refused param fails no run
        elif held.experiment != experiment or abs(held.started_at.timestamp() - started) > 1e-3:
            raise Conflict(
                f"run {rid} exists in chachaml in experiment {held.experiment!r}, started"
                f" {held.started_at.isoformat()}, and is not this MLflow run's import"
            )
        else:
            await run_ops.set_tags(self.store, rid, tags)
        if params:
            await run_ops.log_params(self.store, rid, params)
        await self._metrics(rid, histories)
        have = list(held.datasets) if held else []
        for ds in datasets:
            if ds not in have:
                await run_ops.log_dataset(self.store, rid, ds)
                have.append(ds)
        await self._artifacts(rid, files, {a.name: a.size for a in held.artifacts} if held else {})
        if mlflow_tags.get(NOTE):
            creator = mlflow_tags.get(USER) or run.info.user_id or None
            await run_ops.set_note(self.store, rid, mlflow_tags[NOTE], creator)
        status = ENDED.get(run.info.status)
        if status is not None and (held is None or held.ended_at is None):
            ended = max(seconds(run.info.end_time) or started, started)
            # the store's end, not run_ops.end_run: history fires no alert rules
            await self.store.end_run(rid, status, None, ended)
        await run_ops.set_tags(self.store, rid, {MARKER: self.label}, IMPORTER)

    async def _metrics(self, rid: str, histories: Mapping[str, Sequence[Any]]) -> None:
        """Store full histories as packed chunks, each with a batch id the store keeps once."""
        batch: list[MetricChunk] = []
        points = 0
        for key, history in histories.items():
            rows = sorted(
                (m.step, m.value if m.value is not None else math.nan, m.timestamp / 1000.0)
                for m in history
            )
            for n, start in enumerate(range(0, len(rows), CHUNK_POINTS)):
                chunk = make_chunk(rid, key, rows[start : start + CHUNK_POINTS])
                batch.append(dataclasses.replace(chunk, batch=f"mlflow-import:{n}:{key}"))
                points += chunk.count
                if points >= BATCH_POINTS:
                    await log_metrics(self.store, batch)
                    batch, points = [], 0
        await log_metrics(self.store, batch)

    def _list_files(self, rid: str, path: str) -> list[Any]:
        """Every file under ``path`` of a run's artifacts (MLflow lists one folder at a time)."""
        found: list[Any] = []
        for entry in self.mlflow.list_artifacts(rid, path or None):
            found.extend(self._list_files(rid, entry.path) if entry.is_dir else [entry])
        return found

    async def _artifacts(
        self,
        rid: str,
        files: Iterable[Any],
        held: Mapping[str, int],
        download: Callable[[str, str], str] | None = None,
        folder: str = "",
    ) -> None:
        """Copy files one by one onto run ``rid`` (under ``folder``), skipping those held.

        ``download(path, into)`` fetches one into a temporary folder (default: the run's).
        """
        fetch = download or (lambda path, into: self.mlflow.download_artifacts(rid, path, into))
        with tempfile.TemporaryDirectory(prefix="chachaml-import-") as tmp:
            for entry in files:
                name = f"{folder}/{entry.path}" if folder else entry.path
                size = held.get(name)
                if size is None or (entry.file_size is not None and size != entry.file_size):
                    local = await self._read(fetch, entry.path, tmp)
                    await artifact_ops.put_file(self.store, self.artifacts, rid, name, local)
                    Path(local).unlink()
                self.copied_files += 1
                self.progress("files", self.copied_files, self.listed_files)

    # logged models (MLflow 3)

    async def logged_models(self, experiments: Mapping[str, str], run_ids: Sequence[str]) -> None:
        """Import the logged models of the imported runs, and those logged outside any run."""
        search = getattr(self.mlflow, "search_logged_models", None)
        if search is None or not experiments:
            return
        found = await self._read(pages, search, experiment_ids=list(experiments))
        found.sort(key=lambda m: (m.creation_timestamp, m.model_id))  # the first keeps its name
        imported = set(run_ids)
        for i, logged in enumerate(found, 1):
            if logged.source_run_id in imported:
                await self.logged_model(logged, logged.source_run_id)
            elif not logged.source_run_id:
                rid = await self._holder_run(logged, experiments[logged.experiment_id])
                await self.logged_model(logged, rid)
            else:
                self.report.skipped.append(
                    f"logged model {logged.name!r} ({logged.model_id}): its run"
                    f" {logged.source_run_id} is not in the import"
                )
            self.progress("logged models", i, len(found))

    async def _holder_run(self, logged: Any, experiment: str) -> str:
        """The run of its own of a model logged outside any run: created once, ended with it."""
        rid = holder_run_id(logged.model_id)
        self.holders.append(rid)
        held = await _held_run(self.store, rid)
        self.report.before.add(held_counts(held))
        if held is None:
            started, creator = seconds(logged.creation_timestamp) or 0.0, logged.tags.get(USER)
            await self.store.create_run(run_ops.new_run(experiment, logged.name, run_id=rid,
                created_by=creator or IMPORTER, started_at=started))  # fmt: skip
        return rid

    def _model_files(self, model_id: str, path: str) -> list[Any]:
        """Every file under ``path`` of a logged model's artifacts."""
        found: list[Any] = []
        for entry in self.mlflow.list_logged_model_artifacts(model_id, path or None):
            found.extend(self._model_files(model_id, entry.path) if entry.is_dir else [entry])
        return found

    async def logged_model(self, logged: Any, rid: str) -> None:
        """Import one logged model onto run ``rid``: files, then record, then the index tag."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        model_id = imported_model_id(rid, logged.model_id)
        files = await self._read(self._model_files, logged.model_id, "")
        self.report.read.add(Counts(logged_models=1, artifacts=len(files)))
        self.listed_files += len(files)
        run = await run_ops.get_run(self.store, rid)
        held = {a.name: a.size for a in run.artifacts}
        if model_ops.TAG + model_id not in run.tags:  # not complete: copy what is missing
            folder = model_ops.folder_for(run.tags, logged.name, model_id)
            repo = await self._read(get_artifact_repository, logged.artifact_location,
                                    tracking_uri=self.tracking_uri)  # fmt: skip
            await self._artifacts(rid, files, held, repo.download_artifacts, folder)
            exp = await experiment_ops.get_experiment(self.store, run.experiment)
            status = MODEL_STATUSES.get(str(logged.status), STATUSES[0])
            record = model_ops.LoggedModel(
                model_id=model_id,
                experiment_id=experiment_ops.mlflow_experiment_id(exp),
                name=logged.name,
                folder=None if folder == logged.name else folder,
                run_id=rid,
                source_run_id=logged.source_run_id or None,
                model_type=logged.model_type or None,
                status=status,
                status_message=logged.status_message or None,
                created_ms=logged.creation_timestamp,
                updated_ms=logged.last_updated_timestamp,
                tags={**dict(logged.tags), MODEL_ID_TAG: logged.model_id},
                params=dict(logged.params),
            )
            await model_ops.write_logged_model(self.store, self.artifacts, record)
            if not logged.source_run_id and status != STATUSES[0] and run.ended_at is None:
                at = max(seconds(logged.last_updated_timestamp) or 0.0, run.started_at.timestamp())
                end: EndStatus = "completed" if status == STATUSES[1] else "failed"
                await self.store.end_run(rid, end, None, at)
            await model_ops.index_logged_model(self.store, record, IMPORTER)
        else:
            self.copied_files += len(files)
        self.logged[logged.model_id] = await model_ops.read_logged_model(
            self.store, self.artifacts, model_id
        )

    # registry

    async def models(self, run_ids: Sequence[str], everything: bool) -> list[str]:
        """Import registered models whose versions come from imported runs; their names."""
        imported = set(run_ids)
        models = await self._read(pages, self.mlflow.search_registered_models)
        names: list[str] = []
        for i, model in enumerate(models, 1):
            quoted = model.name.replace("'", "\\'")
            versions = await self._read(
                pages, self.mlflow.search_model_versions, filter_string=f"name='{quoted}'"
            )
            versions.sort(key=lambda mv: int(mv.version))
            wanted = [mv for mv in versions if mv.run_id in imported or self._logged_of(mv)]
            for mv in versions:
                if mv not in wanted and everything:
                    self.report.skipped.append(
                        f"model {model.name!r} version {mv.version}: its run"
                        f" {mv.run_id or '(none)'} is not in the import (deleted in MLflow, or"
                        " registered from outside a run)"
                    )
            if wanted:
                await self.model(model, wanted)
                names.append(model.name)
            self.progress("models", i, len(models))
        return names

    def _logged_of(self, mv: Any) -> model_ops.LoggedModel | None:
        """The imported logged model a version was registered from, if any."""
        source: str = mv.source or ""
        by_source = self.logged.get(source.removeprefix("models:/"))
        return by_source or self.logged.get(getattr(mv, "model_id", None) or "")

    def _version_source(self, mv: Any) -> _Registered | None:
        """Where chachaml registers a version from (``None``: nothing it imported).

        As MLflow's protocol registers: one file of the run natively; a folder of the run (an
        MLflow model) or a logged model keeping a source MLflow's client loads from.
        """
        source: str = mv.source or ""
        logged = self._logged_of(mv)
        if logged is not None:
            return _Registered(logged.run_id, logged.path, f"models:/{logged.model_id}")
        files = self.run_files.get(mv.run_id)
        if files is None:
            return None
        prefixes = [f"runs:/{mv.run_id}/", files.artifact_uri.rstrip("/") + "/"]
        path = next((source[len(p) :] for p in prefixes if p != "/" and source.startswith(p)), None)
        if path is None:
            return None
        path = path.strip("/")
        if path in files.names:
            return _Registered(mv.run_id, path, None)
        if any(n.startswith(path + "/") for n in files.names):
            return _Registered(mv.run_id, path, f"runs:/{mv.run_id}/{path}")
        return None

    async def model(self, model: Any, versions: Sequence[Any]) -> None:
        """Import a model's versions (in order), stages, aliases, tags and description."""
        name: str = model.name
        try:
            detail: ModelDetail | None = await registry_ops.get_model(self.store, name)
        except NotFound:
            detail = None
        done: dict[int, int] = {}
        if detail is not None:
            done = {
                int(v.tags[VERSION_TAG]): v.version
                for v in detail.versions
                if VERSION_TAG in v.tags
            }
            if len(done) != len(detail.versions):
                raise Conflict(
                    f"model {name!r} exists in chachaml with versions not imported from MLflow;"
                    " rename one of them before importing"
                )
        self.report.before.models += detail is not None
        self.report.before.versions += len(done)
        self.report.read.models += 1
        for mv in versions:
            number = int(mv.version)
            if number in done:
                self.report.read.versions += 1
                continue
            where = self._version_source(mv)
            if where is None:
                self.report.skipped.append(
                    f"model {name!r} version {number}: its source {mv.source!r} is neither"
                    f" among the artifacts of run {mv.run_id} nor an imported logged model"
                )
                continue
            self.report.read.versions += 1
            stage = STAGES.get((mv.current_stage or "none").lower(), "none")
            tags = {**dict(mv.tags), VERSION_TAG: str(number), SOURCE_TAG: mv.source}
            new = await registry_ops.register_model(
                self.store,
                name,
                where.run_id,
                where.artifact,
                mv.user_id or IMPORTER,
                stage=stage,
                description=mv.description or None,
                tags=tags,
                source=where.source,
            )
            done[number] = new.version
        if model.tags:
            await registry_ops.set_model_tags(self.store, name, dict(model.tags))
        current = await registry_ops.get_model(self.store, name)
        if model.description and current.note != model.description:
            await registry_ops.set_model_note(self.store, name, model.description)
        aliases = {a: done[int(v)] for a, v in (model.aliases or {}).items() if int(v) in done}
        self.report.before.aliases += sum(current.aliases.get(a) == v for a, v in aliases.items())
        self.report.read.aliases += len(aliases)
        for alias, version in aliases.items():
            if current.aliases.get(alias) != version:
                await registry_ops.set_alias(self.store, name, alias, version, IMPORTER)
        for mv in versions:
            stage = STAGES.get((mv.current_stage or "none").lower(), "none")
            held = next(
                (v for v in current.versions if v.version == done.get(int(mv.version))), None
            )
            if held is not None and held.stage != stage:
                self.report.notes.append(
                    f"model {name!r} version {mv.version} is {stage} in MLflow and {held.stage}"
                    " in chachaml (one production version at a time)"
                )

    # the count check

    async def count(
        self, experiments: Iterable[str], run_ids: Sequence[str], models: Sequence[str]
    ) -> None:
        """Count in chachaml what the import selected (``report.stored``)."""
        stored = self.report.stored
        held = {e.name for e in await experiment_ops.list_experiments(self.store)}
        stored.experiments = sum(name in held for name in experiments)
        for rid in [*run_ids, *self.holders]:
            stored.add(held_counts(await _held_run(self.store, rid)))
        for name in models:
            detail = await registry_ops.get_model(self.store, name)
            versions = {v.version for v in detail.versions if VERSION_TAG in v.tags}
            stored.models += 1
            stored.versions += len(versions)
            stored.aliases += sum(v in versions for v in detail.aliases.values())


async def import_mlflow(
    store: Store,
    artifacts: ArtifactStore,
    uri: str,
    *,
    experiments: Sequence[str] = (),
    progress: Progress | None = None,
) -> ImportReport:
    """Import the MLflow store at ``uri`` (only ``experiments``, by name, if given).

    See the module docstring; the report's ``mismatches`` is empty when chachaml holds
    everything that was read.
    """
    with mlflow_defaults(uri):
        source = await anyio.to_thread.run_sync(open_source, uri)
        job = MlflowImport(store, artifacts, source, source_label(uri), progress, tracking_uri=uri)
        chosen = await job.experiments(experiments)
        run_ids = await job.runs(chosen)
        await job.logged_models(chosen, run_ids)
        models = await job.models(run_ids, everything=not experiments)
        await job.count(chosen.values(), run_ids, models)
        return job.report
