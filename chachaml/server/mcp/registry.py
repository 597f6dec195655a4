"""The model-registry tools: four reads in the default catalogue, two writes in ``registry``."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from chachaml.records.registry import Model, ModelDetail, ModelVersion, Stage, VersionDiff
from chachaml.server.mcp import render
from chachaml.server.mcp.access import caller_user
from chachaml.server.mcp.runs import ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import registry as registry_ops

MAX_SHOWN = 50

ModelName = Annotated[str, Field(description="A registered model name, as list_models shows it.")]
Version = Annotated[int, Field(ge=1, description="A version number (1, 2, ...).")]


class ModelList(BaseModel):
    """Every registered model, most recently updated first."""

    models: list[Model]


def models_text(models: list[Model]) -> str:
    """Registered models as rows."""
    if not models:
        return "No models registered yet."
    rows = [
        [
            m.name,
            m.version_count,
            m.latest_version,
            m.production_version,
            ", ".join(f"{a}=v{n}" for a, n in sorted(m.aliases.items())),
            m.updated_at,
        ]
        for m in models
    ]
    headers = ["model", "versions", "latest", "production", "aliases", "updated"]
    return f"{len(models)} models:\n{render.table(headers, rows)}"


def versions_table(versions: list[ModelVersion]) -> str:
    """Model versions as rows, with their source run's most common metrics."""
    keys = sorted({k for ver in versions for k in ver.metrics})[: render.MAX_METRIC_COLUMNS]
    rows = [
        [ver.version, ver.stage, ver.run_id, ", ".join(ver.aliases), ver.created_at]
        + [ver.metrics.get(k) for k in keys]
        for ver in versions
    ]
    return render.table(["version", "stage", "run_id", "aliases", "created", *keys], rows)


def model_text(model: ModelDetail) -> str:
    """A model: versions, aliases, tags, note and recent stage changes."""
    lines = [
        f"Model {model.name!r}: {model.version_count} versions; latest v{model.latest_version};"
        f" production: {f'v{model.production_version}' if model.production_version else 'none'}"
    ]
    if model.tags:
        lines.append("tags: " + ", ".join(f"{k}={val}" for k, val in sorted(model.tags.items())))
    lines.append("versions (newest first):\n" + versions_table(model.versions))
    if model.version_count > len(model.versions):
        lines.append(f"({model.version_count - len(model.versions)} older versions not shown)")
    if model.history:
        rows = [[e.at, e.kind, e.version, e.alias, e.old, e.new, e.user] for e in model.history]
        headers = ["at", "kind", "version", "alias", "from", "to", "user"]
        lines.append("recent changes:\n" + render.table(headers, rows))
    if model.note:
        lines.append("note:\n" + model.note[: render.MAX_NOTE])
    return "\n".join(lines)


def version_text(ver: ModelVersion) -> str:
    """One version in a few lines."""
    lines = [
        f"Model {ver.model!r} version {ver.version}: stage {ver.stage}"
        + (f", aliases {', '.join(ver.aliases)}" if ver.aliases else ""),
        f"source run: {ver.run_id}; artifact {ver.artifact!r} ({ver.content_type},"
        f" {ver.size} bytes, sha256 {ver.sha256[:12]})",
        f"registered by {ver.created_by} at {render.cell(ver.created_at)}",
    ]
    if ver.description:
        lines.append(f"description: {ver.description}")
    if ver.metrics:
        lines.append(
            "metrics: " + ", ".join(f"{k}={render.cell(x)}" for k, x in ver.metrics.items())
        )
    if ver.tags:
        lines.append("tags: " + ", ".join(f"{k}={x}" for k, x in sorted(ver.tags.items())))
    return "\n".join(lines)


def diff_text(diff: VersionDiff) -> str:
    """What changed between two versions: params, metric deltas, artifact, datasets."""
    a, b = diff.v1.version, diff.v2.version
    lines = [
        f"Model {diff.model!r}: v{a} ({diff.v1.stage}, run {diff.v1.run_id}) vs"
        f" v{b} ({diff.v2.stage}, run {diff.v2.run_id})",
        "artifact: " + ("changed" if diff.artifact_changed else "identical bytes"),
    ]
    if diff.params:
        rows = [
            [k, c.v1 if c.in_v1 else "(absent)", c.v2 if c.in_v2 else "(absent)"]
            for k, c in diff.params.items()
        ]
        lines.append("params that differ:\n" + render.table(["param", f"v{a}", f"v{b}"], rows))
    else:
        lines.append("params: identical")
    if diff.metrics:
        rows = [[k, m.v1, m.v2, m.delta] for k, m in diff.metrics.items()]
        headers = ["metric", f"v{a}", f"v{b}", "delta"]
        lines.append("metrics:\n" + render.table(headers, rows))
    if diff.datasets:
        changes: list[list[object]] = [[c.role, c.field, c.v1, c.v2] for c in diff.datasets]
        headers = ["dataset role", "field", f"v{a}", f"v{b}"]
        lines.append("datasets that differ:\n" + render.table(headers, changes))
    return "\n".join(lines)


def registry_tools(store: Store, user: str) -> list[ToolFn]:
    """The registry tools bound to ``store``; writes are attributed to the caller.

    Over HTTP the caller is the token's user; over stdio it is ``user``.
    """

    async def list_models() -> Annotated[CallToolResult, ModelList]:
        """Every registered model with its version count, latest and production versions.

        Start here to see what is deployable; then get_model for one model's versions.
        """
        models = await registry_ops.list_models(store)
        return answer(ModelList(models=models), models_text(models))

    async def get_model(model_name: ModelName) -> Annotated[CallToolResult, ModelDetail]:
        """One model: its versions (stage, source run, metrics), aliases, tags, note, history.

        Example: {"model_name": "churn-classifier"}.
        """
        model = await registry_ops.get_model(store, model_name)
        shown = model.model_copy(
            update={
                "versions": model.versions[:MAX_SHOWN],
                "history": model.history[-MAX_SHOWN:],
            }
        )
        return answer(shown, model_text(shown))

    async def get_model_version(
        model_name: ModelName,
        version: Annotated[
            int | None, Field(ge=1, description="A version number; omit to pick by stage.")
        ] = None,
        stage: Annotated[
            Stage | None,
            Field(description="Without version: the latest version in this stage (production)."),
        ] = None,
    ) -> Annotated[CallToolResult, ModelVersion]:
        """One model version: stage, source run, artifact, metrics and tags.

        With no version, returns the latest version in the stage (production by default):
        "what is in production?" is {"model_name": "churn-classifier"}.
        Example: {"model_name": "churn-classifier", "version": 3}.
        """
        ver = await registry_ops.get_model_version(store, model_name, version, stage)
        return answer(ver, version_text(ver))

    async def diff_model_versions(
        model_name: ModelName, v1: Version, v2: Version
    ) -> Annotated[CallToolResult, VersionDiff]:
        """What changed between two versions: params, metric deltas, artifact bytes, datasets.

        Use it before promoting a version. Example: {"model_name": "churn", "v1": 2, "v2": 3}.
        """
        diff = await registry_ops.diff_versions(store, model_name, v1, v2)
        return answer(diff, diff_text(diff))

    async def promote_model(
        model_name: ModelName,
        version: Version,
        stage: Annotated[Stage, Field(description="The stage to move the version to.")],
        reason: Annotated[str | None, Field(description="Why, for the audit trail.")] = None,
    ) -> Annotated[CallToolResult, ModelVersion]:
        """Move a model version to a stage (none, staging, production, archived).

        Promoting to production archives the current production version. Check with
        diff_model_versions first. Example: {"model_name": "churn", "version": 3,
        "stage": "production", "reason": "better recall on March data"}.
        """
        who = caller_user(user)  # the token's user over HTTP
        ver = await registry_ops.promote(store, model_name, version, stage, who, reason)
        return answer(ver, f"Promoted. {version_text(ver)}")

    async def set_model_note(
        model_name: ModelName,
        note: Annotated[str, Field(description="Markdown; replaces the model's note.")],
    ) -> Annotated[CallToolResult, ModelDetail]:
        """Replace a model's markdown note (e.g. its intended use and known limits).

        Example: {"model_name": "churn", "note": "Trained on 2025 data; weak on new users."}.
        """
        model = await registry_ops.set_model_note(store, model_name, note)
        shown = model.model_copy(
            update={"versions": model.versions[:MAX_SHOWN], "history": model.history[-MAX_SHOWN:]}
        )
        return answer(shown, f"Note of model {model.name!r} set ({len(note)} characters).")

    return [
        list_models,
        get_model,
        get_model_version,
        diff_model_versions,
        promote_model,
        set_model_note,
    ]
