"""The ``watch`` toolset: wait for a run to end or reach a metric value, and ask one to stop.

An agent running an experiment loop starts training, calls ``wait_for_run`` (progress
notifications carry the latest values while it waits, woken by the store's events) and
``stop_run``s what is hopeless; the training process sees the request within one heartbeat.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from chachaml.records.runs import StopRequest
from chachaml.server.mcp import render
from chachaml.server.mcp.access import caller_user
from chachaml.server.mcp.runs import RunId, ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import watch as watch_ops
from chachaml.tools.events import EventFeed


def _values(metrics: dict[str, float | None]) -> str:
    return ", ".join(f"{k}={render.cell(val)}" for k, val in sorted(metrics.items())) or "none"


def wait_text(found: watch_ops.WaitResult) -> str:
    """How the wait ended, and the latest values."""
    why = {
        "ended": f"run {found.run_id} ended ({found.status})",
        "condition": f"run {found.run_id}: {found.until} holds",
        "timeout": f"run {found.run_id} is still {found.status}; the wait timed out",
    }[found.outcome]
    return f"{why} after {found.waited_seconds:.1f} s. Latest metrics: {_values(found.metrics)}."


def watch_tools(store: Store, user: str = "mcp", feed: EventFeed | None = None) -> list[ToolFn]:
    """The ``watch`` toolset, bound to ``store`` (and the server's event feed, if it has one).

    Stop requests are attributed to the caller: the token's user over HTTP, ``user`` over stdio.
    """

    async def wait_for_run(
        run_id: RunId,
        ctx: Context,
        until: Annotated[
            str | None,
            Field(
                description="Metric conditions joined by 'and', on latest values, e.g."
                ' "val_loss < 0.2" or "accuracy >= 0.9 and loss < 0.1". Omit to wait'
                " for the run to end."
            ),
        ] = None,
        timeout: Annotated[
            float,
            Field(ge=0, le=watch_ops.MAX_WAIT, description="Seconds to wait at most."),
        ] = 60.0,
    ) -> Annotated[CallToolResult, watch_ops.WaitResult]:
        """Wait until a run ends, a metric condition holds, or the timeout passes.

        Returns at once when that is already so. While waiting, progress notifications carry
        the latest metric values. outcome says why it returned: ended, condition or timeout;
        call it again to keep watching. Example: {"run_id": "3f2c9a...", "until":
        "val_loss < 0.2", "timeout": 300}.
        """
        seen = 0

        async def progress(metrics: dict[str, float | None], waited: float) -> None:
            nonlocal seen
            seen += 1
            await ctx.report_progress(seen, None, f"{waited:.0f} s: {_values(metrics)}")

        found = await watch_ops.wait_for_run(
            store, run_id, until, timeout, feed=feed, progress=progress
        )
        return answer(found, wait_text(found))

    async def stop_run(
        run_id: RunId,
        reason: Annotated[
            str | None, Field(max_length=watch_ops.MAX_REASON, description="Why it should stop.")
        ] = None,
    ) -> Annotated[CallToolResult, StopRequest]:
        """Ask a running run to stop; its process sees it within one heartbeat interval.

        Training code checking should_stop() (or an on_stop callback) ends early and the run
        ends with status stopped, recording who asked and why; a pipeline's remaining steps
        are skipped. Asking again keeps the first request.
        Example: {"run_id": "3f2c9a...", "reason": "val_loss stalled at 0.9"}.
        """
        found = await watch_ops.stop_run(store, run_id, reason, caller_user(user))
        text = f"Stop requested for run {found.run_id} by {found.user or 'unknown'}" + (
            f": {found.reason}." if found.reason else "."
        )
        return answer(found, text + " The run sees it at its next heartbeat.")

    return [wait_for_run, stop_run]
