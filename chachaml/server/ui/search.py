"""Search: runs by metric conditions, params and tags; pick some to compare."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.records.runs import OPS, ParamValue
from chachaml.server.mcp.render import metric_columns
from chachaml.server.ui.common import (
    store_of,
    text_param,
    twin,
)
from chachaml.server.ui.runs import run_row
from chachaml.tools import runs as run_ops

MAX_CONDITIONS = 10
_CONDITION = re.compile(r"^\s*([^<>=\s]+)\s*(>=|<=|>|<|=)\s*(\S+)\s*$")
_PAIR = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


def _value(text: str) -> ParamValue:
    """A param value typed as JSON when it parses as a JSON scalar, else the text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, str | int | float | bool) else text


def _conditions(request: Request) -> list[tuple[str, str, float]]:
    out = []
    for raw in request.query_params.getlist("where"):
        if not raw.strip():
            continue
        match = _CONDITION.match(raw)
        if match is None:
            raise InvalidInput(
                f"condition {raw!r} must look like metric>=0.9 (ops: {', '.join(OPS)})"
            )
        key, op, text = match.groups()
        try:
            out.append((key, op, float(text)))
        except ValueError:
            raise InvalidInput(f"condition {raw!r}: {text!r} is not a number") from None
    if len(out) > MAX_CONDITIONS:
        raise InvalidInput(f"at most {MAX_CONDITIONS} metric conditions")
    return out


def _pairs(request: Request, name: str) -> dict[str, str]:
    out = {}
    for raw in request.query_params.getlist(name):
        if not raw.strip():
            continue
        match = _PAIR.match(raw)
        if match is None:
            raise InvalidInput(f"{name} filter {raw!r} must look like key=value")
        out[match.group(1)] = match.group(2)
    return out


async def search_page(request: Request) -> dict[str, Any]:
    """Runs passing every metric condition, param and tag filter; pick some to compare."""
    where = _conditions(request)
    params = {k: _value(v) for k, v in _pairs(request, "param").items()}
    tags = _pairs(request, "tag")
    experiment = text_param(request, "experiment")
    asked = bool(where or params or tags or experiment)
    runs = (
        await run_ops.search_runs(
            store_of(request),
            experiment=experiment,
            where=where,
            params=params,
            tags=tags,
            limit=100,
        )
        if asked
        else []
    )
    keys = list(dict.fromkeys([c[0] for c in where] + metric_columns([r.metrics for r in runs])))
    return {
        "asked": asked,
        "experiment": experiment,
        "where": [f"{k}{op}{val:g}" for k, op, val in where],
        "params": params,
        "tags": tags,
        "runs": [run_row(r) for r in runs],
        "metric_keys": keys,
        "ops": list(OPS),
    }


def routes() -> list[Route]:
    """The Search page."""
    return [*twin("/search", search_page, "search.html")]
