"""The Pipelines pages: every pipeline, and one pipeline's steps as a graph and a table.

Each node of the graph links to its step's run (or its table row before it has one) and
carries its full name; every attempt of a retried step is linked (attempt runs are child
runs tagged with the pipeline and step). Under a killed pipeline, steps that never started
read "not run" instead of "pending" forever. ``static/pipelines.js`` follows the pipeline
events (``/api/events``) and, on a change, reads the JSON twin and updates the page in place
(no reload): the list always (new pipelines appear), a pipeline's page while it runs. Without
a stream it polls the twin every ``refresh_seconds`` while something runs.
"""

from __future__ import annotations

import textwrap
import time
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.records.pipelines import PIPELINE_STATUSES, PIPELINE_TAG, PipelineDetail
from chachaml.server.ui.common import int_param, path_param, store_of, text_param, twin
from chachaml.server.ui.live import events_after
from chachaml.store.protocol import Store
from chachaml.tools import pipelines as pipeline_ops
from chachaml.tools import runs as run_ops

# The tags the pipeline runner puts on each attempt's run (chachaml.client.pipelines.attempt)
STEP_TAG = "chachaml.step"
ATTEMPT_TAG = "chachaml.attempt"
ELEMENT_TAG = "chachaml.element"  # a fan-out element's run
ELEMENTS_TAG = "chachaml.elements"  # on a fan-out step's run: how many elements it has
WORKER_TAG = "chachaml.worker"  # host:pid of the cluster worker that ran it
DASHBOARD_TAG = "chachaml.dask_dashboard"  # on the pipeline's run
NODE_W, MAX_NODE_W, NODE_H, GAP_X, GAP_Y = 160, 300, 34, 60, 22
CHAR_W, LINE_H = 7, 15  # 12 px text: about 7 px a character
LIVE_SECONDS = 2
NOT_RUN = "not run"


async def pipelines_page(request: Request) -> dict[str, Any]:
    """Pipelines newest first, with step counts by status; live while one runs."""
    status = text_param(request, "status")
    limit = int_param(request, "limit", 50, 1, 500)
    found = await pipeline_ops.list_pipelines(store_of(request), status=status, limit=limit)
    return {
        "status": status,
        "statuses": list(PIPELINE_STATUSES),
        "pipelines": [
            {**p.model_dump(mode="json"), "duration_seconds": p.duration_seconds} for p in found
        ],
        "refresh_seconds": LIVE_SECONDS if any(p.status == "running" for p in found) else None,
        "events_after": await events_after(request),  # new pipelines appear as they start
    }


def _label(name: str, width: int) -> list[str]:
    """A step name in lines that fit a node ``width`` wide, as consecutive slices of the name.

    Joined, the lines are the name itself (a space it wraps at stays at the end of its line),
    so the node's text reads as the full name, the words its link's accessible name holds
    (axe's label-in-name, WCAG 2.5.3), even where a long word is broken mid-way.
    """
    per_line = max(8, (width - 16) // CHAR_W)
    starts, at = [], 0
    for piece in textwrap.wrap(name, per_line, break_long_words=True, break_on_hyphens=True):
        found = name.find(piece, at)
        if found < 0:  # textwrap only drops blanks; anything else: one line, never a lost word
            return [name]
        starts.append(found)
        at = found + len(piece)
    if not starts:
        return [name]
    starts[0] = 0
    return [name[a:b] for a, b in zip(starts, [*starts[1:], len(name)], strict=True)]


def step_graph(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A layered drawing of the step DAG: a column per dependency depth, edges between boxes.

    Nodes widen (up to ``MAX_NODE_W``) to fit the longest name and grow as tall as their name
    needs, so every name shows in full (a name cut with "…" would show a part-word its link's
    label does not hold); each keeps it for a ``<title>`` too, and the link to its run.
    """
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            deps = [d for d in by_name[name]["depends_on"] if d in by_name and d not in seen]
            depth[name] = 1 + max((level(d, seen | {name}) for d in deps), default=-1)
        return depth[name]

    by_name = {s["name"]: s for s in steps}
    longest = max((len(s["name"]) for s in steps), default=0)
    width = min(MAX_NODE_W, max(NODE_W, 16 + CHAR_W * longest))
    tops: dict[int, int] = {}  # each column's next free y
    nodes: dict[str, dict[str, Any]] = {}
    for i, step in enumerate(steps):
        column = level(step["name"])
        lines = _label(step["name"], width)
        height = max(NODE_H, 10 + LINE_H * (len(lines) + 1))
        y = tops.get(column, 10)
        tops[column] = y + height + GAP_Y
        nodes[step["name"]] = {
            "name": step["name"],
            "lines": lines,
            "status": step.get("shown_status", step["status"]),
            "status_class": step.get("status_class", step["status"]),
            "href": f"/runs/{step['run_id']}" if step.get("run_id") else f"#step-{i + 1}",
            "x": 10 + column * (width + GAP_X),
            "y": y,
            "height": height,
        }
    edges = [
        {
            "x1": nodes[dep]["x"] + width,
            "y1": nodes[dep]["y"] + nodes[dep]["height"] // 2,
            "x2": node["x"],
            "y2": node["y"] + node["height"] // 2,
        }
        for step in steps
        for dep in step["depends_on"]
        if dep in nodes
        for node in (nodes[step["name"]],)
    ]
    return {
        "width": 20 + (max(depth.values(), default=0) + 1) * (width + GAP_X) - GAP_X,
        "height": max(tops.values(), default=10 + NODE_H + GAP_Y) - GAP_Y + 10,
        "node_width": width,
        "line_height": LINE_H,
        "nodes": list(nodes.values()),
        "edges": edges,
    }


class _Runs:
    """A pipeline's runs by role: each step's attempts, fan-out elements, the dashboard."""

    def __init__(self) -> None:
        self.attempts: dict[str, list[dict[str, Any]]] = {}
        self.elements: dict[str, dict[str, set[str]]] = {}  # step -> index -> statuses
        self.workers: dict[str, set[str]] = {}  # step -> the workers its elements ran on
        self.totals: dict[str, int] = {}
        self.dashboard: str | None = None


async def _runs(store: Store, pipeline_id: str) -> _Runs:
    """Every attempt's run of each step (first attempt first), and fan-out elements."""
    found = await run_ops.search_runs(store, tags={PIPELINE_TAG: pipeline_id}, limit=None)
    out = _Runs()
    by_step = out.attempts
    for run in found:
        step = run.tags.get(STEP_TAG)
        if step is None:  # the pipeline's own run
            out.dashboard = run.tags.get(DASHBOARD_TAG) or out.dashboard
            continue
        if ELEMENT_TAG in run.tags:
            statuses = out.elements.setdefault(step, {})
            statuses.setdefault(run.tags[ELEMENT_TAG], set()).add(run.status)
            if WORKER_TAG in run.tags:
                out.workers.setdefault(step, set()).add(run.tags[WORKER_TAG])
            continue
        if run.tags.get(ELEMENTS_TAG, "").isdigit():
            out.totals[step] = int(run.tags[ELEMENTS_TAG])
        number = run.tags.get(ATTEMPT_TAG, "")
        by_step.setdefault(step, []).append(
            {
                "attempt": int(number) if number.isdigit() else None,
                "run_id": run.id,
                "status": run.status,
                "started_at": run.started_at,
                "worker": run.tags.get(WORKER_TAG),
            }
        )
    for runs in by_step.values():
        runs.sort(key=lambda a: (a["attempt"] or 0, a["started_at"]))
    return out


def _elements(runs: _Runs, step: str) -> dict[str, int] | None:
    """A fan-out step's elements: how many completed, failed (every attempt), of all."""
    if step not in runs.totals:
        return None
    statuses = runs.elements.get(step, {}).values()
    done = sum(1 for s in statuses if "completed" in s)
    failed = sum(1 for s in statuses if s and s <= {"failed", "killed"})
    return {"done": done, "failed": failed, "total": runs.totals[step]}


def _worker(runs: _Runs, step: str) -> str | None:
    """Where a step ran: its last attempt's worker, or its elements' workers."""
    spread = sorted(runs.workers.get(step, ()))
    if spread:
        return spread[0] if len(spread) == 1 else f"{len(spread)} workers: {', '.join(spread)}"
    attempts = runs.attempts.get(step, [])
    return attempts[-1]["worker"] if attempts else None


def _steps(found: PipelineDetail, runs: _Runs) -> list[Any]:
    """Steps as the page shows them: duration (or time so far), attempts, shown status.

    Also the worker each ran on and a fan-out step's progress.
    """
    attempts = runs.attempts
    now = time.time()
    stopped = found.status in ("killed", "failed", "completed")
    out = []
    for step in found.steps:
        row = step.model_dump(mode="json")
        seconds = step.duration_seconds
        if seconds is None and step.started_at is not None and step.status == "running":
            seconds = max(0.0, now - step.started_at.timestamp())
        row["duration_seconds"] = seconds
        row["attempt_runs"] = attempts.get(step.name, [])
        row["worker"] = _worker(runs, step.name)
        row["elements"] = _elements(runs, step.name)
        row["shown_status"], row["status_class"] = step.status, step.status
        if step.status == "pending" and stopped:
            row["shown_status"] = f"{NOT_RUN} (pipeline {found.status})"
            row["status_class"] = "notrun"
        out.append(row)
    return out


async def pipeline_page(request: Request) -> dict[str, Any]:
    """A pipeline, its step graph, and each step's dependencies, status, timing and runs.

    While the pipeline is still going the page updates itself as its steps change.
    """
    store = store_of(request)
    found = await pipeline_ops.get_pipeline(store, path_param(request, "pipeline_id"))
    runs = await _runs(store, found.id)
    steps = _steps(found, runs)
    data = found.model_dump(mode="json")
    data["steps"] = steps
    data["dashboard"] = runs.dashboard
    data["duration_seconds"] = found.duration_seconds
    live = found.status == "running"
    return {
        "pipeline": data,
        "graph": step_graph(steps),
        "refresh_seconds": LIVE_SECONDS if live else None,
        "events_after": await events_after(request) if live else "",
    }


def routes() -> list[Route]:
    """The Pipelines pages."""
    return [
        *twin("/pipelines", pipelines_page, "pipelines.html"),
        *twin("/pipelines/{pipeline_id}", pipeline_page, "pipeline.html"),
    ]
