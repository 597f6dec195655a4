"""Models, a page per model and the diff of any two versions.

The model page shows each version's description and tags, warns of aliases left on archived
versions, and carries the write forms (promote, with a confirm step before production; set
and remove aliases) that post to :mod:`chachaml.server.ui.actions`. Names may hold ``/``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.records.registry import STAGES
from chachaml.server.access import principal_of
from chachaml.server.ui.common import path_param, store_of, text_param, twin
from chachaml.server.ui.markdown import note_html
from chachaml.tools import registry as registry_ops

SHORT_HASH = 12


async def models_page(request: Request) -> dict[str, Any]:
    """Every registered model with its latest and production versions and aliases."""
    models = await registry_ops.list_models(store_of(request))
    return {"models": [m.model_dump(mode="json") for m in models]}


def _acting_as(request: Request) -> str | None:
    """Who this page's writes will be recorded as, when the page's own request says."""
    who = principal_of(request)
    return who.user if who.via in ("session", "local", "token") and who.may("write") else None


async def model_page(request: Request) -> dict[str, Any]:
    """A model: versions with stage, alias, description and tag; history; the write forms."""
    model = await registry_ops.get_model(store_of(request), path_param(request, "name"))
    keys = sorted({k for v in model.versions for k in v.metrics})[:6]
    numbers = [v.version for v in model.versions]  # newest first
    return {
        "model": model.model_dump(mode="json"),
        "note_html": note_html(model.note),
        "metric_keys": keys,
        "stages": list(STAGES),
        "production": next((v.version for v in model.versions if v.stage == "production"), None),
        "archived_aliases": [
            {"alias": a, "version": v.version}
            for v in model.versions
            if v.stage == "archived"
            for a in v.aliases
        ],
        "diff_pick": {"v1": numbers[1], "v2": numbers[0]} if len(numbers) > 1 else None,
        "acting_as": _acting_as(request),
    }


def _number(raw: str | None, name: str) -> int:
    if raw is None:
        raise InvalidInput(f"{name} is missing: pick two versions to compare")
    try:
        return registry_ops.check_version(int(raw), name)
    except ValueError:
        raise InvalidInput(f"{name} must be a version number, got {raw!r}") from None


async def _diff(request: Request, name: str, v1: int, v2: int) -> dict[str, Any]:
    store = store_of(request)
    diff = await registry_ops.diff_versions(store, name, v1, v2)
    model = await registry_ops.get_model(store, name)
    a, b = diff.v1, diff.v2
    return {
        "diff": diff.model_dump(mode="json"),
        "artifact": {
            "name_changed": a.artifact != b.artifact,
            "content_changed": a.sha256 != b.sha256,
            "hash_v1": a.sha256[:SHORT_HASH],
            "hash_v2": b.sha256[:SHORT_HASH],
        },
        "versions": [v.version for v in model.versions],
    }


async def diff_page(request: Request) -> dict[str, Any]:
    """Two versions of a model compared through their source runs and artifacts."""
    name = path_param(request, "name")
    v1 = _number(path_param(request, "v1"), "v1")
    return await _diff(request, name, v1, _number(path_param(request, "v2"), "v2"))


async def diff_pick_page(request: Request) -> dict[str, Any]:
    """The same diff with the model and versions in the query (what the pickers submit)."""
    name = text_param(request, "model", 250)
    if name is None:
        raise InvalidInput("model is missing: say which model's versions to compare")
    v1 = _number(text_param(request, "v1", 20), "v1")
    return await _diff(request, name, v1, _number(text_param(request, "v2", 20), "v2"))


def routes() -> list[Route]:
    """Models and the version diff."""
    return [
        *twin("/models", models_page, "models.html"),
        *twin("/models/{name:path}", model_page, "model.html"),
        *twin("/diff", diff_pick_page, "diff.html"),
        *twin("/diff/{name:path}/{v1}/{v2}", diff_page, "diff.html"),
    ]
