"""The pipeline half of :class:`~chachaml.client.remote.store.RemoteStore`: one request each.

A pipeline's progress (created, each step started and ended, ended, resumed) and its reads
go to the server's pipeline endpoints (:mod:`chachaml.server.api.pipelines`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from chachaml.client.remote.connection import READ, Connection, quoted
from chachaml.records.pipelines import NewPipeline, PipelineDetail, PipelineInfo, PipelineStep
from chachaml.store.protocol import PipelineEnd, StepEnd


class _Pipelines(BaseModel):
    pipelines: list[PipelineInfo]


class RemotePipelines:
    """Pipelines over HTTP, for a store whose ``_conn`` reaches the server."""

    _conn: Connection

    async def create_pipeline(self, new: NewPipeline) -> None:
        """Record a pipeline starting, its steps pending."""
        body = new.model_dump(mode="json", exclude={"created_by"})
        await self._conn.post("/api/w/pipelines", body, user=new.created_by)

    async def start_pipeline_step(
        self, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Mark a step running."""
        body = {"step": step, "run_id": run_id, "attempt": attempt, "started_at": started_at}
        await self._conn.post(f"/api/w/pipelines/{quoted(pipeline_id)}/steps/start", body)

    async def end_pipeline_step(
        self,
        pipeline_id: str,
        step: str,
        status: StepEnd,
        ended_at: float,
        error: str | None = None,
        result: str | None = None,
    ) -> None:
        """End a step."""
        body = {"step": step, "status": status, "ended_at": ended_at, "error": error,
                "result": result}  # fmt: skip
        await self._conn.post(f"/api/w/pipelines/{quoted(pipeline_id)}/steps/end", body)

    async def end_pipeline(
        self, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
    ) -> None:
        """Mark a pipeline ended."""
        body = {"status": status, "error": error, "ended_at": ended_at}
        await self._conn.post(f"/api/w/pipelines/{quoted(pipeline_id)}/end", body)

    async def resume_pipeline(
        self, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
    ) -> PipelineDetail:
        """Put a pipeline back to running on a new run."""
        body = {"run_id": run_id, "rerun": list(rerun), "at": at}
        path = f"/api/w/pipelines/{quoted(pipeline_id)}/resume"
        detail: PipelineDetail = await self._conn.post(path, body, PipelineDetail)
        return detail

    async def list_pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[PipelineInfo]:
        """Pipelines, newest first."""
        body = {"name": name, "status": status, "limit": limit}
        found: _Pipelines = await self._conn.post(f"{READ}/pipelines/query", body, _Pipelines)
        return found.pipelines

    async def get_pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline with its steps."""
        path = f"{READ}/pipelines/{quoted(pipeline_id)}"
        detail: PipelineDetail = await self._conn.get(path, PipelineDetail)
        return detail

    async def get_pipeline_step(self, pipeline_id: str, step: str) -> PipelineStep:
        """One step of a pipeline (a step's name may hold a slash: it goes in the body)."""
        path = f"{READ}/pipelines/{quoted(pipeline_id)}/step"
        found: PipelineStep = await self._conn.post(path, {"step": step}, PipelineStep)
        return found
