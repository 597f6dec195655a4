"""Search: now a view of the Runs table, which takes one filter expression.

Old links and bookmarks (``/search?where=acc>=0.9&param=lr=0.01&tag=team=ml``) land on the
Runs page with the same search written as its filter (``metrics.acc >= 0.9 and params.lr =
0.01 and tags.team = "ml"``), flat rather than nested; ``/api/search`` lands on its twin.
Whatever was typed is carried over as written, so a mistake shows on the Runs page beside it.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

_CONDITION = re.compile(r"^\s*([^<>=\s]+)\s*(.*)$")
_PAIR = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


def _quoted(text: str) -> str:
    return json.dumps(text)


def _param(value: str) -> str:
    """A param value as the old form meant it: JSON scalars as typed, other text quoted."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return _quoted(value)
    return value if isinstance(parsed, int | float | bool | str) else _quoted(value)


def expression(request: Request) -> str:
    """The old Search form's fields as one filter expression (empty fields dropped)."""
    parts = []
    for raw in request.query_params.getlist("where"):
        match = _CONDITION.match(raw)
        if raw.strip() and match is not None:
            parts.append(f"metrics.{match.group(1)} {match.group(2).strip()}".strip())
    for name, prefix in (("param", "params"), ("tag", "tags")):
        for raw in request.query_params.getlist(name):
            pair = _PAIR.match(raw)
            if pair is None:
                if raw.strip():
                    parts.append(f"{prefix}.{raw.strip()}")  # left for the filter to explain
                continue
            value = _param(pair.group(2)) if name == "param" else _quoted(pair.group(2))
            parts.append(f"{prefix}.{pair.group(1)} = {value}")
    return " and ".join(parts)


async def search(request: Request) -> Response:
    """The Runs page (or its JSON twin) with the search as its filter expression."""
    query = [("q", expression(request))]
    experiment = request.query_params.get("experiment", "").strip()
    if experiment:
        query.append(("experiment", experiment))
    target = "/api/runs" if request.url.path.startswith("/api/") else "/runs"
    if query[0][1] or experiment:
        target += "?" + urlencode([*query, ("nest", "0")])
    return RedirectResponse(target, status_code=303)


def routes() -> list[Route]:
    """The Search page, which redirects to the Runs table."""
    return [Route("/search", search), Route("/api/search", search)]
