"""chachaml's registry records in MLflow's JSON (``model_registry.proto``), and MLflow's sources.

- A **registered model** is a chachaml model: its description is the model's markdown note,
  its tags and aliases are the model's; ``latest_versions`` holds the newest version of each
  stage, as MLflow's server reports it.
- A **model version** is a chachaml version: number, stage (``None``/``Staging``/
  ``Production``/``Archived`` are ``none``/``staging``/``production``/``archived``),
  description, tags, aliases, creator, source run. Its status is always ``READY``: a version
  exists once its transaction commits.
- A version's **source**: a version registered natively (one artifact of a run, copied and
  hashed) reads as ``runs:/<run_id>/<artifact>``; one registered through MLflow from a location
  that is not a single artifact of the run (an MLflow model directory, a logged model
  ``models:/<model_id>``, a remote URI) keeps that location as given (serializer ``mlflow``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chachaml.errors import InvalidInput
from chachaml.records.registry import STAGES, Model, ModelDetail, ModelVersion, Stage
from chachaml.server.api.mlflow.entities import pairs
from chachaml.server.api.mlflow.ids import millis
from chachaml.tools.registry import MLFLOW_SERIALIZER

TO_STAGE: dict[str, str] = {
    "none": "None",
    "staging": "Staging",
    "production": "Production",
    "archived": "Archived",
}
LOCAL_SCHEMES = frozenset({"", "file"})


def stage_of(name: str) -> Stage:
    """A chachaml stage from MLflow's stage name (any case); ``InvalidInput`` otherwise."""
    wanted = name.strip().lower()
    for stage in STAGES:
        if stage == wanted:
            found: Stage = stage  # type: ignore[assignment]
            return found
    raise InvalidInput(
        f"invalid model version stage {name!r}: one of {', '.join(TO_STAGE.values())}"
    )


def version_number(text: str | int | None) -> int:
    """MLflow's version (a decimal string) as chachaml's positive integer."""
    raw = str(text).strip() if text is not None else ""
    if not raw.isdigit() or not 1 <= int(raw) < 1 << 63:
        raise InvalidInput(f"model version must be a positive integer, got {text!r}")
    return int(raw)


def source_of(ver: ModelVersion) -> str:
    """The MLflow ``source`` of a version (see the module's docstring)."""
    if ver.serializer == MLFLOW_SERIALIZER:
        return ver.artifact_uri
    return f"runs:/{ver.run_id}/{ver.artifact}"


def model_id_of(source: str) -> str | None:
    """The logged model a ``models:/<model_id>`` source names, if it names one."""
    if not source.startswith("models:/"):
        return None
    rest = source.removeprefix("models:/").strip("/")
    return rest if rest and "/" not in rest else None


def model_version(ver: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message."""
    source = source_of(ver)
    body: dict[str, Any] = {
        "name": ver.model,
        "version": str(ver.version),
        "creation_timestamp": millis(ver.created_at),
        "last_updated_timestamp": millis(max(ver.created_at, ver.stage_changed_at)),
        "user_id": ver.created_by,
        "current_stage": TO_STAGE[ver.stage],
        "source": source,
        "run_id": ver.run_id,
        "status": "READY",
        "tags": pairs(ver.tags),
        "aliases": list(ver.aliases),
    }
    if ver.description:
        body["description"] = ver.description
    model_id = model_id_of(source)
    if model_id is not None:
        body["model_id"] = model_id
    return body


def latest_per_stage(versions: Iterable[ModelVersion]) -> dict[str, ModelVersion]:
    """The newest version in each stage, by stage, in chachaml's stage order."""
    latest: dict[str, ModelVersion] = {}
    for ver in versions:
        if ver.stage not in latest or latest[ver.stage].version < ver.version:
            latest[ver.stage] = ver
    return {stage: latest[stage] for stage in STAGES if stage in latest}


def registered_model(
    model: Model, note: str | None, versions: Sequence[ModelVersion]
) -> dict[str, Any]:
    """A model as MLflow's ``RegisteredModel`` message (``versions``: all of the model's)."""
    body: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(model.updated_at),
        "user_id": model.created_by,
        "latest_versions": [model_version(v) for v in latest_per_stage(versions).values()],
        "tags": pairs(model.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(model.aliases.items())],
    }
    if note:
        body["description"] = note
    return body


def detail(model: ModelDetail) -> dict[str, Any]:
    """A model read in full as MLflow's ``RegisteredModel``."""
    return registered_model(model, model.note, model.versions)


@dataclass(frozen=True)
class Source:
    """Where an MLflow ``create_model_version`` says the model is, read against chachaml.

    ``run_id`` is the run the version comes from; ``path`` the model's path in that run's
    artifacts (``None`` when the source is not under the run: a logged model, a remote URI).
    """

    uri: str
    run_id: str
    path: str | None


def _invalid(source: str, why: str) -> InvalidInput:
    return InvalidInput(f"invalid model version source {source!r}: {why}")


def read_source(source: str, run_id: str | None) -> Source:
    """The run and path of an MLflow model source (``runs:/``, ``mlflow-artifacts:/``, other).

    As MLflow's server does, a ``runs:/`` source must name the ``run_id`` given with it, a
    local path is refused (the server cannot read the client's disk), and so is ``..``.
    chachaml registers every version from a run, so a source that names none needs
    ``run_id``.
    """
    parts = urlsplit(source)
    if ".." in parts.path.split("/"):
        raise _invalid(source, "it holds '..'")
    if parts.scheme.lower() in LOCAL_SCHEMES or len(parts.scheme) == 1:  # C:\ is a path
        raise _invalid(
            source, "a local path; log the model to the run (its artifacts) and register"
            " runs:/<run_id>/<path>"
        )  # fmt: skip
    found_run: str | None = None
    path = ""
    if parts.scheme == "runs":
        found_run, _, path = parts.path.lstrip("/").partition("/")
    elif parts.scheme == "mlflow-artifacts":
        segments = parts.path.lstrip("/").split("/")
        if len(segments) >= 3 and segments[2] == "artifacts":
            found_run, path = segments[1], "/".join(segments[3:])
    if found_run is not None:
        if run_id and run_id != found_run:
            raise _invalid(source, f"it names run {found_run!r}, not the run_id {run_id!r}")
        return Source(uri=source, run_id=found_run, path=path.strip("/") or None)
    if not run_id:
        raise _invalid(source, "chachaml registers versions from runs: give run_id")
    return Source(uri=source, run_id=run_id, path=None)
