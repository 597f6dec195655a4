"""The ``pipelines`` toolset: list pipelines and read one with its steps."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from chachaml.records.pipelines import PipelineDetail, PipelineInfo
from chachaml.server.mcp import render
from chachaml.server.mcp.runs import ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import pipelines as pipeline_ops

MAX_RESULT_CHARS = 200


class PipelineList(BaseModel):
    """Pipelines, newest first."""

    pipelines: list[PipelineInfo]


def _counts(info: PipelineInfo) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(info.step_counts.items()))


def pipelines_text(found: list[PipelineInfo]) -> str:
    """Pipelines as rows."""
    if not found:
        return "No pipelines match."
    rows = [
        [p.id, p.name, p.status, _counts(p), p.started_at, p.duration_seconds, p.run_id]
        for p in found
    ]
    headers = ["pipeline_id", "name", "status", "steps", "started", "seconds", "run_id"]
    return f"{len(found)} pipelines:\n{render.table(headers, rows)}"


def pipeline_text(detail: PipelineDetail) -> str:
    """A pipeline: status, then each step with dependencies, status, time, run and result."""
    head = f"Pipeline {detail.name!r} ({detail.id}): {detail.status}, run {detail.run_id}"
    if detail.resumes:
        head += f", resumed {detail.resumes}x"
    if detail.error:
        head += f"\nerror: {detail.error}"
    rows = []
    for s in detail.steps:
        result = json.dumps(s.result)[:MAX_RESULT_CHARS] if s.result_stored else ""
        rows.append(
            [
                s.name,
                ", ".join(s.depends_on),
                s.status,
                s.attempts,
                s.duration_seconds,
                s.run_id,
                s.error or result,
            ]
        )
    headers = ["step", "depends_on", "status", "attempts", "seconds", "run_id", "error/result"]
    return f"{head}\n{render.table(headers, rows)}"


def pipeline_tools(store: Store) -> list[ToolFn]:
    """The ``pipelines`` toolset, bound to ``store``."""

    async def list_pipelines(
        name: Annotated[str | None, Field(description="Only pipelines of this name.")] = None,
        status: Annotated[
            Literal["running", "completed", "failed", "killed", "stopped"] | None,
            Field(description="Only pipelines in this status."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="How many to return.")] = 20,
    ) -> Annotated[CallToolResult, PipelineList]:
        """Pipelines, newest first, with their step counts by status and their run ids.

        Use it to see what ran, what is running now and what failed. Example:
        {"status": "failed"}.
        """
        found = await pipeline_ops.list_pipelines(store, name, status, limit)
        return answer(PipelineList(pipelines=found), pipelines_text(found))

    async def get_pipeline(
        pipeline_id: Annotated[
            str, Field(description="A pipeline id exactly as list_pipelines prints it.")
        ],
    ) -> Annotated[CallToolResult, PipelineDetail]:
        """One pipeline with its steps: dependencies, status, attempts, time, run, error/result.

        Use get_run on a step's run_id for what that step logged. Example:
        {"pipeline_id": "9d1e..."}.
        """
        detail = await pipeline_ops.get_pipeline(store, pipeline_id)
        return answer(detail, pipeline_text(detail))

    return [list_pipelines, get_pipeline]
