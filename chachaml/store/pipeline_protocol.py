"""The ``PipelineStore`` protocol: pipelines and their steps, the part every backend stores.

Contract for implementers (on top of the ``Store`` contract):

- A pipeline is created ``running`` with every step ``pending``, in one transaction, after
  its run exists; its id is chosen by the caller. Steps keep their definition order
  (``position``) and their dependencies as step names.
- Each write is one transaction that checks the current status first, so a step only goes
  ``pending`` → ``running`` → ``completed``/``failed``/``killed`` (``running`` again for a
  retry), or ``pending`` → ``skipped``; a pipeline only ends once. A write against another
  state raises ``Conflict`` naming the pipeline, the step and its state, and changes nothing.
- A stored step result is JSON text chosen by the caller (``None``: nothing stored).
- A pipeline stored as ``running`` whose run's heartbeat is older than its timeout (or whose
  run ended or is gone) is reported as ``killed`` by every read and filter, and its
  ``running`` steps as ``killed`` too.
- Resuming resets the named steps to ``pending`` (clearing times, error, attempts, run and
  result), points the pipeline at a new run, and counts the resume; a pipeline that is
  live (running with a fresh heartbeat) or completed raises ``Conflict``.
- A pipeline id or step name that does not exist raises ``NotFound`` naming it.
- Lists are newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from chachaml.records.pipelines import NewPipeline, PipelineDetail, PipelineInfo

StepEnd = Literal["completed", "failed", "skipped", "killed"]
PipelineEnd = Literal["completed", "failed", "killed"]


class PipelineStore(Protocol):
    """Async persistence for pipelines, their steps and each step's status."""

    async def create_pipeline(self, new: NewPipeline) -> None:
        """Record a running pipeline with its steps pending; ``Conflict`` if the id exists."""
        ...

    async def start_pipeline_step(
        self, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
    ) -> None:
        """Mark a pending or running step running, in attempt ``attempt`` on run ``run_id``."""
        ...

    async def end_pipeline_step(
        self,
        pipeline_id: str,
        step: str,
        status: StepEnd,
        ended_at: float,
        error: str | None = None,
        result: str | None = None,
    ) -> None:
        """End a running step (``skipped``: a pending one), with its error or JSON result."""
        ...

    async def end_pipeline(
        self, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
    ) -> None:
        """Mark a running pipeline ended."""
        ...

    async def resume_pipeline(
        self, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
    ) -> PipelineDetail:
        """Reset the ``rerun`` steps to pending and mark the pipeline running on ``run_id``."""
        ...

    async def list_pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[PipelineInfo]:
        """Pipelines, newest first, narrowed by name and (computed) status."""
        ...

    async def get_pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline with its steps; ``NotFound`` naming the id if absent."""
        ...
