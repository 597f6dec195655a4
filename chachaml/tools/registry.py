"""Model registry operations: create, register, promote, alias, tag, note, read, diff, delete.

Stages are ``none``, ``staging``, ``production`` and ``archived``; a model has at most one
production version, and promoting a version to production archives the previous one in the
same transaction. Aliases (``champion``, ``challenger``, ...) name versions beside stages.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath, PureWindowsPath

from chachaml.errors import InvalidInput, NotFound, StoreUnavailable
from chachaml.records import validation as v
from chachaml.records.registry import (
    STAGES,
    DatasetChange,
    MetricDelta,
    Model,
    ModelDetail,
    ModelVersion,
    NewModelVersion,
    ParamChange,
    Stage,
    VersionDiff,
)
from chachaml.records.runs import Dataset, ParamValue
from chachaml.store.artifacts import MAX_NAME, ArtifactStore
from chachaml.store.protocol import Store

ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
MODEL_FILE_SUFFIXES = frozenset(
    [
        ".pkl",
        ".pickle",
        ".joblib",
        ".skops",
        ".pt",
        ".pth",
        ".onnx",
        ".h5",
        ".keras",
        ".bin",
        ".safetensors",
        ".json",
        ".npy",
    ]
)
DATASET_FIELDS = ("name", "n_rows", "n_cols", "features", "source", "digest")
MAX_SOURCE = 4096  # an MLflow model location
MLFLOW_SERIALIZER = "mlflow"  # what a version registered from an MLflow location records

# argument checks


def check_model_name(value: object) -> str:
    """A model name: a non-empty string without control characters."""
    return v.name(value, "model_name")


def check_version(value: object, what: str = "version") -> int:
    """A version number: a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 1 << 63:
        raise InvalidInput(f"{what} must be a positive integer (1, 2, ...), got {value!r}")
    return value


def check_stage(value: object) -> Stage:
    """One of the registry stages."""
    if value not in STAGES:
        raise InvalidInput(f"stage must be one of {', '.join(STAGES)}; got {value!r}")
    stage: Stage = value  # type: ignore[assignment]
    return stage


def check_alias(value: object) -> str:
    """An alias: a letter, then letters, digits, ``_``, ``-`` or ``.``; not a stage name."""
    if not isinstance(value, str) or not ALIAS_RE.fullmatch(value):
        raise InvalidInput(
            "alias must start with a letter and hold only letters, digits, '_', '-' or '.'"
            f" (at most 100 characters), got {value!r}"
        )
    if value in STAGES:
        raise InvalidInput(f"alias {value!r} is a stage name; pick another (e.g. 'champion')")
    return value


def check_user(value: object) -> str:
    """Who made a change."""
    return v.name(value, "user")


def looks_like_path(value: str) -> bool:
    """Whether an artifact argument looks like a local file path rather than an artifact name."""
    return (
        value.startswith(("/", "./", "../", "~"))
        or "\\" in value
        or bool(PureWindowsPath(value).drive)
        or PurePosixPath(value).suffix.lower() in MODEL_FILE_SUFFIXES
    )


# reads


async def list_models(store: Store) -> list[Model]:
    """Every registered model with its latest and production versions, most recent first."""
    return await store.list_models()


async def get_model(store: Store, model_name: str) -> ModelDetail:
    """A model: versions (newest first), aliases, tags, note and stage/alias history."""
    return await store.get_model(check_model_name(model_name))


async def model_versions(
    store: Store, model_name: str, stage: str | None = None
) -> list[ModelVersion]:
    """A model's versions, newest first, each with its source run's latest metrics."""
    return await store.list_model_versions(
        check_model_name(model_name), None if stage is None else check_stage(stage)
    )


async def get_model_version(
    store: Store,
    model_name: str,
    version: int | None = None,
    stage: str | None = None,
    alias: str | None = None,
) -> ModelVersion:
    """One version: by number, by alias, or the latest in a stage (production by default)."""
    name = check_model_name(model_name)
    given = [
        k
        for k, val in (("version", version), ("stage", stage), ("alias", alias))
        if val is not None
    ]
    if len(given) > 1:
        raise InvalidInput(f"give at most one of version, stage or alias; got {', '.join(given)}")
    if version is not None:
        return await store.get_model_version(name, check_version(version))
    if alias is not None:
        wanted = check_alias(alias)
        versions = await store.list_model_versions(name)
        for found in versions:
            if wanted in found.aliases:
                return found
        known = sorted({a for ver in versions for a in ver.aliases})
        raise NotFound(
            f"model {name!r} has no alias {wanted!r} (its aliases: {', '.join(known) or 'none'})"
        )
    wanted_stage = check_stage(stage if stage is not None else "production")
    in_stage = await store.list_model_versions(name, wanted_stage)
    if in_stage:
        return in_stage[0]
    everything = await store.list_model_versions(name)
    listing = ", ".join(f"{ver.version} ({ver.stage})" for ver in everything) or "none"
    raise NotFound(
        f"model {name!r} has no version in stage {wanted_stage!r} (its versions: {listing})"
    )


async def read_model(
    store: Store,
    artifacts: ArtifactStore,
    model_name: str,
    version: int | None = None,
    stage: str | None = None,
    alias: str | None = None,
) -> tuple[ModelVersion, bytes]:
    """A version and its artifact bytes, checked against the hash recorded at registration."""
    found = await get_model_version(store, model_name, version, stage, alias)
    if found.serializer == MLFLOW_SERIALIZER:
        raise InvalidInput(
            f"version {found.version} of model {found.model!r} was registered through MLflow"
            f" from {found.artifact_uri!r}: load it with MLflow"
            f" (mlflow.pyfunc.load_model('models:/{found.model}/{found.version}'))"
        )
    data = await artifacts.get_bytes(found.artifact_uri)
    if hashlib.sha256(data).hexdigest() != found.sha256:
        raise StoreUnavailable(
            f"version {found.version} of model {found.model!r} is corrupt: the content hash of"
            f" artifact {found.artifact!r} does not match the one recorded at registration"
        )
    return found, data


async def diff_versions(store: Store, model_name: str, v1: int, v2: int) -> VersionDiff:
    """Compare two versions: params changed, metric deltas, artifact hash, dataset changes."""
    name = check_model_name(model_name)
    first = await store.get_model_version(name, check_version(v1, "v1"))
    second = await store.get_model_version(name, check_version(v2, "v2"))
    run1, run2 = await store.get_run(first.run_id), await store.get_run(second.run_id)
    params: dict[str, ParamChange] = {}
    for key in sorted(run1.params.keys() | run2.params.keys()):
        in1, in2 = key in run1.params, key in run2.params
        a, b = run1.params.get(key), run2.params.get(key)
        if in1 != in2 or not _same(a, b):
            params[key] = ParamChange(v1=a, v2=b, in_v1=in1, in_v2=in2)
    metrics: dict[str, MetricDelta] = {}
    for key in sorted(run1.metrics.keys() | run2.metrics.keys()):
        m1, m2 = run1.metrics.get(key), run2.metrics.get(key)
        both = m1 is not None and m2 is not None and math.isfinite(m1) and math.isfinite(m2)
        delta = m2 - m1 if both and m1 is not None and m2 is not None else None
        metrics[key] = MetricDelta(v1=m1, v2=m2, delta=delta)
    return VersionDiff(
        model=name,
        v1=first,
        v2=second,
        same_run=first.run_id == second.run_id,
        params=params,
        metrics=metrics,
        artifact_changed=first.sha256 != second.sha256,
        datasets=_dataset_changes(run1.datasets, run2.datasets),
        datasets_v1=run1.datasets,
        datasets_v2=run2.datasets,
    )


def _same(a: ParamValue, b: ParamValue) -> bool:
    return type(a) is type(b) and a == b


def _dataset_changes(first: list[Dataset], second: list[Dataset]) -> list[DatasetChange]:
    """Per role (the last dataset logged with it): which described fields differ."""
    by_role1 = {d.role: d for d in first}
    by_role2 = {d.role: d for d in second}
    changes: list[DatasetChange] = []
    for role in sorted(by_role1.keys() | by_role2.keys()):
        d1, d2 = by_role1.get(role), by_role2.get(role)
        if d1 is None or d2 is None:
            changes.append(
                DatasetChange(
                    role=role,
                    field="presence",
                    v1="present" if d1 else "absent",
                    v2="present" if d2 else "absent",
                )
            )
            continue
        for field in DATASET_FIELDS:
            a, b = getattr(d1, field), getattr(d2, field)
            if a != b:
                changes.append(DatasetChange(role=role, field=field, v1=a, v2=b))
    return changes


# writes


async def register_model(
    store: Store,
    model_name: str,
    run_id: str,
    artifact: str,
    user: str,
    stage: str = "none",
    description: str | None = None,
    tags: Mapping[str, object] | None = None,
    *,
    source: str | None = None,
) -> ModelVersion:
    """Register the next version of a model from an artifact logged on a run.

    A missing artifact raises ``NotFound`` listing the run's artifacts, with a hint when the
    argument looks like a file path (log the file first, then register its artifact name).
    With ``source`` (an MLflow model location; ``artifact`` is then its path in the run) the
    version records that location instead of copying an artifact, as MLflow's registry does.
    """
    name, rid = check_model_name(model_name), v.run_id(run_id)
    if not isinstance(artifact, str) or not artifact:
        raise InvalidInput(f"artifact must be the name of an artifact of the run, got {artifact!r}")
    new = NewModelVersion(
        model=name,
        run_id=rid,
        artifact=v.text(artifact, "artifact", MAX_NAME),
        stage=check_stage(stage),
        description=v.optional_text(description, "description"),
        created_by=check_user(user),
        tags=v.tags(tags or {}),
        source=None if source is None else v.text(source, "source", MAX_SOURCE),
    )
    if source is not None:
        return await store.register_model_version(new)
    existing = await store.list_artifacts(rid)
    if all(a.name != artifact for a in existing):
        listing = ", ".join(a.name for a in existing) or "none"
        hint = ""
        if looks_like_path(artifact):
            hint = (
                f"; {artifact!r} looks like a file path, but register_model takes the name of an"
                " artifact logged on the run: log the file first (log_file(name, path) or"
                " log_artifact(name, value)) and register that name"
            )
        raise NotFound(f"run {rid!r} has no artifact {artifact!r} (its artifacts: {listing}){hint}")
    return await store.register_model_version(new)


async def promote(
    store: Store,
    model_name: str,
    version: int,
    stage: str,
    user: str,
    reason: str | None = None,
    *,
    archive_existing: bool = False,
) -> ModelVersion:
    """Move a version to a stage; to production archives the previous production version.

    ``archive_existing`` archives every other version in that stage too (MLflow's
    ``archive_existing_versions``); it applies to staging and production only.
    """
    wanted = check_stage(stage)
    if archive_existing and wanted not in ("staging", "production"):
        raise InvalidInput(
            f"archive_existing applies to staging and production, not to stage {wanted!r}"
        )
    return await store.promote_model_version(
        check_model_name(model_name),
        check_version(version),
        wanted,
        check_user(user),
        v.optional_text(reason, "reason"),
        archive_existing,
    )


async def set_alias(
    store: Store, model_name: str, alias: str, version: int, user: str
) -> ModelVersion:
    """Point an alias (e.g. ``champion``) at a version, moving it if it pointed elsewhere."""
    name, number = check_model_name(model_name), check_version(version)
    await store.set_model_alias(name, check_alias(alias), number, check_user(user))
    return await store.get_model_version(name, number)


async def delete_alias(store: Store, model_name: str, alias: str, user: str) -> None:
    """Remove an alias from a model."""
    await store.delete_model_alias(
        check_model_name(model_name), check_alias(alias), check_user(user)
    )


async def set_model_tags(
    store: Store, model_name: str, tags: Mapping[str, object]
) -> dict[str, str]:
    """Set tags on a model; returns all its tags."""
    name = check_model_name(model_name)
    await store.set_model_tags(name, v.tags(tags))
    return (await store.get_model(name)).tags


async def set_model_version_tags(
    store: Store, model_name: str, version: int, tags: Mapping[str, object]
) -> dict[str, str]:
    """Set tags on a model version; returns all its tags."""
    name, number = check_model_name(model_name), check_version(version)
    await store.set_model_version_tags(name, number, v.tags(tags))
    return (await store.get_model_version(name, number)).tags


async def set_model_note(store: Store, model_name: str, markdown: str) -> ModelDetail:
    """Replace a model's markdown note; returns the model."""
    name = check_model_name(model_name)
    await store.set_model_note(name, v.text(markdown, "markdown"))
    return await store.get_model(name)


async def create_model(
    store: Store,
    model_name: str,
    user: str,
    note: str | None = None,
    tags: Mapping[str, object] | None = None,
) -> ModelDetail:
    """Create a model with no versions yet (registering creates one too); ``Conflict`` if taken."""
    return await store.create_model(
        check_model_name(model_name),
        check_user(user),
        v.optional_text(note, "note"),
        v.tags(tags or {}),
    )


async def rename_model(store: Store, model_name: str, new_name: str) -> ModelDetail:
    """Rename a model (versions, aliases, tags and history follow); returns it."""
    name, new = check_model_name(model_name), check_model_name(new_name)
    await store.rename_model(name, new)
    return await store.get_model(new)


async def delete_model(store: Store, model_name: str) -> None:
    """Delete a model with its versions, aliases, tags and history (their runs stay)."""
    await store.delete_model(check_model_name(model_name))


async def delete_model_tags(store: Store, model_name: str, keys: Sequence[str]) -> dict[str, str]:
    """Delete tags of a model; returns the tags left."""
    name = check_model_name(model_name)
    await store.delete_model_tags(name, [v.key(k, "tag key") for k in keys])
    return (await store.get_model(name)).tags


async def delete_model_version(store: Store, model_name: str, version: int) -> None:
    """Delete one version with its aliases and tags; its number is never given again."""
    await store.delete_model_version(check_model_name(model_name), check_version(version))


async def set_model_version_description(
    store: Store, model_name: str, version: int, description: str | None
) -> ModelVersion:
    """Replace a version's description (``None`` or empty clears it); returns the version."""
    name, number = check_model_name(model_name), check_version(version)
    text = v.optional_text(description or None, "description")
    await store.set_model_version_description(name, number, text)
    return await store.get_model_version(name, number)


async def delete_model_version_tags(
    store: Store, model_name: str, version: int, keys: Sequence[str]
) -> dict[str, str]:
    """Delete tags of a version; returns the tags left."""
    name, number = check_model_name(model_name), check_version(version)
    await store.delete_model_version_tags(name, number, [v.key(k, "tag key") for k in keys])
    return (await store.get_model_version(name, number)).tags
