"""The Pipelines pages: every pipeline, and one pipeline's steps as a graph and a table."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.records.pipelines import PIPELINE_STATUSES
from chachaml.server.ui.common import int_param, path_param, store_of, text_param, twin
from chachaml.tools import pipelines as pipeline_ops


async def pipelines_page(request: Request) -> dict[str, Any]:
    """Pipelines newest first, with step counts by status."""
    status = text_param(request, "status")
    limit = int_param(request, "limit", 50, 1, 500)
    found = await pipeline_ops.list_pipelines(store_of(request), status=status, limit=limit)
    return {
        "status": status,
        "statuses": list(PIPELINE_STATUSES),
        "pipelines": [p.model_dump(mode="json") for p in found],
    }


NODE_W, NODE_H, GAP_X, GAP_Y = 160, 34, 60, 22
LIVE_SECONDS = 2


def step_graph(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A layered drawing of the step DAG: a column per dependency depth, edges between boxes."""
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            deps = [d for d in by_name[name]["depends_on"] if d in by_name and d not in seen]
            depth[name] = 1 + max((level(d, seen | {name}) for d in deps), default=-1)
        return depth[name]

    by_name = {s["name"]: s for s in steps}
    rows: dict[int, int] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for step in steps:
        column = level(step["name"])
        row = rows[column] = rows.get(column, -1) + 1
        x, y = 10 + column * (NODE_W + GAP_X), 10 + row * (NODE_H + GAP_Y)
        nodes[step["name"]] = {"name": step["name"], "status": step["status"], "x": x, "y": y}
    edges = [
        {
            "x1": nodes[dep]["x"] + NODE_W,
            "y1": nodes[dep]["y"] + NODE_H // 2,
            "x2": node["x"],
            "y2": node["y"] + NODE_H // 2,
        }
        for step in steps
        for dep in step["depends_on"]
        if dep in nodes
        for node in (nodes[step["name"]],)
    ]
    return {
        "width": 20 + (max(depth.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X,
        "height": 20 + max(rows.values(), default=0) * (NODE_H + GAP_Y) + NODE_H,
        "node_width": NODE_W,
        "node_height": NODE_H,
        "nodes": list(nodes.values()),
        "edges": edges,
    }


async def pipeline_page(request: Request) -> dict[str, Any]:
    """A pipeline, its step graph, and each step's dependencies, status, timing and run.

    The page reloads itself every few seconds while the pipeline is still going.
    """
    found = await pipeline_ops.get_pipeline(store_of(request), path_param(request, "pipeline_id"))
    data = found.model_dump(mode="json")
    live = data["status"] in ("pending", "running")
    return {
        "pipeline": data,
        "graph": step_graph(data["steps"]),
        "refresh_seconds": LIVE_SECONDS if live else None,
    }


def routes() -> list[Route]:
    """The Pipelines pages."""
    return [
        *twin("/pipelines", pipelines_page, "pipelines.html"),
        *twin("/pipelines/{pipeline_id}", pipeline_page, "pipeline.html"),
    ]
