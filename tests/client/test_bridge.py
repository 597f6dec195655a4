"""The one sync-async bridge: the client's runtime, pipelines and chat.ask all cross through it."""

from __future__ import annotations

import threading
from contextvars import ContextVar

import anyio
import pytest

from chachaml.client import bridge
from chachaml.errors import StoreUnavailable

who: ContextVar[str] = ContextVar("who", default="nobody")


async def whoami() -> tuple[str, str]:
    await anyio.sleep(0)
    return who.get(), threading.current_thread().name


def test_run_runs_a_coroutine_function_to_its_end_in_this_thread() -> None:
    who.set("ana")
    assert bridge.run(whoami) == ("ana", threading.current_thread().name)


@pytest.mark.anyio
async def test_run_inside_a_running_loop_uses_a_worker_thread_with_the_callers_context() -> None:
    who.set("bo")
    seen, thread = bridge.run(whoami, thread_name="chachaml-test")  # as a notebook would
    assert seen == "bo"
    assert thread.startswith("chachaml-test")


@pytest.mark.anyio
async def test_to_thread_keeps_the_callers_context() -> None:
    who.set("cy")
    assert await bridge.to_thread(who.get) == "cy"


def test_a_loop_thread_runs_calls_until_stopped_then_refuses_them() -> None:
    order: list[str] = []

    async def setup() -> None:
        order.append("setup")

    async def background() -> None:
        await anyio.sleep_forever()

    async def teardown() -> None:
        order.append("teardown")

    async def last() -> None:
        order.append("last")

    loop = bridge.LoopThread("chachaml-test-loop")
    loop.start(setup, background, teardown)
    assert loop.running
    assert loop.call(whoami)[1] == "chachaml-test-loop"
    loop.stop(last)
    assert order == ["setup", "last", "teardown"]
    with pytest.raises(StoreUnavailable, match="closed"):
        loop.call(whoami)


def test_a_loop_thread_whose_setup_fails_raises_that_error() -> None:
    async def setup() -> None:
        raise OSError("cannot open the store")

    async def nothing() -> None:
        return None

    with pytest.raises(OSError, match="cannot open"):
        bridge.LoopThread("chachaml-test-loop").start(setup, nothing, nothing)
