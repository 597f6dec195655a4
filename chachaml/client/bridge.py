"""The one bridge between synchronous and async code: the client, pipelines and chat use it.

Three crossings, each keeping the caller's ``contextvars`` wherever a thread is involved:

- :func:`run`: run an async function to its end from synchronous code. Where the calling
  thread already runs an event loop (a notebook), it runs on a fresh loop in a worker thread,
  in a copy of the caller's context, so e.g. the current run is still current there.
- :func:`to_thread`: from async code, run a blocking function in a worker thread (in a copy of
  the caller's context) without blocking the event loop.
- :class:`LoopThread`: a long-lived event loop on a daemon thread that synchronous callers
  hand coroutines to (the tracking client's runtime keeps its open store there).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal

from chachaml.errors import StoreUnavailable

T = TypeVar("T")


def run(fn: Callable[[], Awaitable[T]], *, thread_name: str = "chachaml-bridge") -> T:
    """``fn()`` run to the end on an event loop; safe where a loop already runs (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fn)
    context = contextvars.copy_context()
    with ThreadPoolExecutor(1, thread_name_prefix=thread_name) as pool:
        return pool.submit(context.run, _run_detached, fn).result()


def _run_detached(fn: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run`` in a copied context that still says the caller's event loop is running."""
    try:
        import sniffio
    except ImportError:  # without sniffio, anyio looks at the thread's own loop only
        return anyio.run(fn)
    sniffio.current_async_library_cvar.set(None)  # the copy's marker is not this thread's
    return anyio.run(fn)


async def to_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, in a copy of the caller's context."""
    context = contextvars.copy_context()
    return await anyio.to_thread.run_sync(partial(context.run, fn, *args))


class LoopThread:
    """An event loop on a daemon thread, reached from other threads through a blocking portal.

    :meth:`start` runs ``setup`` then ``background`` on the loop; :meth:`call` hands it a
    coroutine function and waits; :meth:`stop` ends the loop after ``teardown``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(
        self,
        setup: Callable[[], Awaitable[None]],
        background: Callable[[], Coroutine[Any, Any, None]],
        teardown: Callable[[], Awaitable[None]],
    ) -> None:
        """Start the thread, await ``setup`` there and return; raises what ``setup`` raised."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            try:
                await setup()
                self.loop = asyncio.get_running_loop()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            try:
                async with BlockingPortal() as portal, anyio.create_task_group() as tg:
                    self._portal = portal
                    tg.start_soon(background)
                    ready.set()
                    await portal.sleep_until_stopped()
                    tg.cancel_scope.cancel()
            finally:
                await teardown()

        self._thread = threading.Thread(target=anyio.run, args=(main,), name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    @property
    def running(self) -> bool:
        """Whether the loop takes calls (started and not stopped)."""
        return self._portal is not None and not self._stopped

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and wait for its result (from any other thread)."""
        if self._portal is None or self._stopped:
            raise StoreUnavailable("the chachaml runtime is closed")
        return self._portal.call(fn, *args)

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """The async twin of :meth:`call`, usable from any other event loop."""
        return await to_thread(self.call, fn, *args)

    def stop(self, last: Callable[[], Awaitable[None]] | None = None) -> None:
        """Await ``last`` on the loop, then stop it and wait for the thread (at most 10 s)."""
        if self._stopped or self._portal is None:
            return
        self._stopped = True
        try:
            if last is not None:
                self._portal.call(last)
        finally:
            self._portal.call(self._portal.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
