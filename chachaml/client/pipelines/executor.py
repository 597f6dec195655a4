"""Where a pipeline's steps run: the seam, and the local executor (the caller's process).

The scheduler (:mod:`chachaml.client.pipelines.runner`) decides what runs when, retries
and skips; an :class:`Executor` runs one attempt and hands back a *handle* to its result:
the value itself locally, a Dask future on a cluster, so that a result reaches its
dependents without passing through the driver. ``executor="dask://host:8786"`` or a
:class:`~chachaml.client.pipelines.dask.DaskExecutor` runs the steps on a Dask cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio

from chachaml.client.pipelines.attempt import Job, fan_out_items, perform, perform_element
from chachaml.errors import InvalidInput
from chachaml.tools import pipelines as ops

if TYPE_CHECKING:
    from chachaml.client.client import Client


@runtime_checkable
class Executor(Protocol):
    """Runs step attempts somewhere; one executor serves one pipeline run at a time.

    Contract: :meth:`open` is called before the pipeline is recorded and refuses (raises
    ``InvalidInput``) a store its workers cannot reach, so nothing has run yet; every
    other method is called between :meth:`open` and :meth:`close`. :meth:`attempt` and
    :meth:`element` return once the attempt ended, with a handle to its value, or raise
    the step's own error; cancelling the caller cancels the attempt. Handles of earlier
    steps (and plain values, for results read back from the store) are valid ``inputs``.
    """

    @property
    def limit(self) -> int | None:
        """How many fan-out elements to have running at once (``None``: no limit here)."""
        ...

    @property
    def dashboard(self) -> str | None:
        """A link to watch the workers (Dask's dashboard), when there is one."""
        ...

    async def open(self, client: Client, max_parallel: int) -> None:
        """Get ready to run steps that record to ``client``'s store."""
        ...

    async def attempt(
        self, job: Job, inputs: Mapping[str, Any], started: Callable[[], None]
    ) -> Any:
        """Run one attempt of a whole step (``started()`` once it runs); its handle."""
        ...

    async def element(self, job: Job, inputs: Mapping[str, Any], index: int) -> Any:
        """Run one element of a fan-out step; its handle."""
        ...

    async def length(self, handle: Any, job: Job) -> int:
        """How many elements the list ``handle`` holds (``InvalidInput`` if not a list)."""
        ...

    async def collect(self, handles: Sequence[Any]) -> Any:
        """A handle to the list of the values of ``handles``, in order."""
        ...

    async def encoded(self, handle: Any) -> str | None:
        """The value's JSON text as the store keeps it (``None``: not JSON-able)."""
        ...

    async def values(self, handles: Mapping[str, Any]) -> dict[str, Any]:
        """The values behind handles, for the caller of the pipeline."""
        ...

    async def close(self) -> None:
        """Release what :meth:`open` took (a cluster given by the caller stays up)."""
        ...


class LocalExecutor:
    """Steps in the caller's process, results in its memory.

    Async steps run on its event loop, sync ones in threads, ``max_parallel`` at most.
    """

    def __init__(self) -> None:
        self._client: Client | None = None
        self._threads: anyio.CapacityLimiter | None = None
        self._max_parallel = 1

    def __repr__(self) -> str:
        return "LocalExecutor()"

    @property
    def limit(self) -> int | None:
        """Fan-out elements share the step's ``max_parallel`` threads."""
        return self._max_parallel

    @property
    def dashboard(self) -> str | None:
        """No dashboard: the steps run here."""
        return None

    async def open(self, client: Client, max_parallel: int) -> None:
        """Every store works: the steps run in this process."""
        self._client = client
        self._max_parallel = max_parallel
        self._threads = anyio.CapacityLimiter(max_parallel)

    def _require(self) -> Client:
        if self._client is None:
            raise RuntimeError("LocalExecutor used before open()")
        return self._client

    async def attempt(
        self, job: Job, inputs: Mapping[str, Any], started: Callable[[], None]
    ) -> Any:
        """The attempt, run on this event loop."""
        return await perform(self._require(), job, inputs, limiter=self._threads, started=started)

    async def element(self, job: Job, inputs: Mapping[str, Any], index: int) -> Any:
        """The element, run on this event loop."""
        return await perform_element(self._require(), job, inputs, index, limiter=self._threads)

    async def length(self, handle: Any, job: Job) -> int:
        """The list's length."""
        return fan_out_items(handle, job.step, job.map_over or "")

    async def collect(self, handles: Sequence[Any]) -> Any:
        """The values are the handles."""
        return list(handles)

    async def encoded(self, handle: Any) -> str | None:
        """The value's JSON text."""
        return ops.encode_result(handle)

    async def values(self, handles: Mapping[str, Any]) -> dict[str, Any]:
        """The values are the handles."""
        return dict(handles)

    async def close(self) -> None:
        """Nothing to release."""
        self._client = None


def resolve_executor(executor: Executor | str | None) -> Executor:
    """The executor ``executor`` names.

    ``None`` or ``"local"``: a :class:`LocalExecutor`; ``"dask://host:port"``: a
    ``DaskExecutor`` connected to that scheduler for this run only.
    """
    if executor is None or executor == "local":
        return LocalExecutor()
    if isinstance(executor, str):
        if executor.startswith("dask://"):
            from chachaml.client.pipelines.dask import DaskExecutor

            made = DaskExecutor(executor)
            made.per_run = True
            return made
        raise InvalidInput(
            f"executor must be 'local', 'dask://host:port' or an Executor; got {executor!r}"
        )
    if not isinstance(executor, Executor):
        raise InvalidInput(
            f"executor must be 'local', 'dask://host:port' or an Executor; got {executor!r}"
        )
    return executor
