"""Models, a page per model and the diff of two versions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.records.registry import STAGES
from chachaml.server.ui.common import path_param, store_of, twin
from chachaml.server.ui.markdown import note_html
from chachaml.tools import registry as registry_ops


async def models_page(request: Request) -> dict[str, Any]:
    """Every registered model with its latest and production versions and aliases."""
    models = await registry_ops.list_models(store_of(request))
    return {"models": [m.model_dump(mode="json") for m in models]}


async def model_page(request: Request) -> dict[str, Any]:
    """A model: versions with stage and alias badges, source runs, metrics, history."""
    model = await registry_ops.get_model(store_of(request), path_param(request, "name"))
    keys = sorted({k for v in model.versions for k in v.metrics})[:6]
    return {
        "model": model.model_dump(mode="json"),
        "note_html": note_html(model.note),
        "metric_keys": keys,
        "stages": list(STAGES),
    }


def _version(request: Request, name: str) -> int:
    raw = path_param(request, name)
    try:
        return registry_ops.check_version(int(raw), name)
    except ValueError:
        raise InvalidInput(f"{name} must be a version number, got {raw!r}") from None


async def diff_page(request: Request) -> dict[str, Any]:
    """Two versions of a model compared through their source runs."""
    diff = await registry_ops.diff_versions(
        store_of(request),
        path_param(request, "name"),
        _version(request, "v1"),
        _version(request, "v2"),
    )
    return {"diff": diff.model_dump(mode="json")}


def routes() -> list[Route]:
    """Models and the version diff."""
    return [
        *twin("/models", models_page, "models.html"),
        *twin("/models/{name}", model_page, "model.html"),
        *twin("/diff/{name}/{v1}/{v2}", diff_page, "diff.html"),
    ]
