"""``chachaml serve`` processes that start in a fraction of a second, one per test.

Importing the server costs about 3.5 s, too slow to pay per test. A helper process imports
``chachaml.cli`` and the server modules once, then forks a child for each request that runs
``chachaml.cli.main(["serve", ...])``: the code path of the ``chachaml serve`` command, with
its own environment, store and port, without the imports.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.mcp_seed import free_port, wait_until_serving

#: What ``chachaml serve`` imports after the CLI has started (found by diffing
#: ``sys.modules`` across a served request of each kind): without these in the helper, each
#: forked server imported them itself, 0.7 CPU-seconds of a 0.75 s start.
PRELOAD = (
    "chachaml.server.app",  # the API, chat and MCP modules with it
    "chachaml.store.sqlite",
    "chachaml.store.postgres",
    "uvicorn",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
)


def _helper() -> None:
    """The helper process: one JSON request per stdin line, the forked child's pid out."""
    import gc
    import importlib

    import chachaml.cli as cli
    from chachaml.tls import client_context

    for name in PRELOAD:
        importlib.import_module(name)
    client_context()  # built once here, inherited by every child
    # what the helper holds lives as long as each child: out of the collector's reach, the
    # collection ``serve`` does at start scans only the child's own objects
    gc.collect()
    gc.freeze()

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # exited children are reaped by the kernel
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.environ.clear()
            os.environ.update(request["env"])
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            code = 1
            try:
                code = cli.main(request["argv"])
            finally:
                os._exit(code)
        print(pid, flush=True)


class ServerFactory:
    """Starts ``chachaml serve`` children of one pre-imported helper process."""

    def __init__(self) -> None:
        self._helper = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        # one request and its answer at a time: tests start replicas from several threads,
        # and two readers of one pipe could take each other's line (then wait forever)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the helper (servers it started are stopped by their own ``serve``)."""
        assert self._helper.stdin is not None
        self._helper.stdin.close()
        self._helper.wait(timeout=10)
        if self._helper.stdout is not None:
            self._helper.stdout.close()

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> int:
        """Fork a child running ``chachaml.cli.main(argv)`` with ``env``, its output to
        ``log``; returns its pid."""
        assert self._helper.stdin is not None and self._helper.stdout is not None
        request = {"argv": argv, "env": env, "log": str(log)}
        with self._lock:
            self._helper.stdin.write(json.dumps(request) + "\n")
            self._helper.stdin.flush()
            return int(self._helper.stdout.readline())

    @contextmanager
    def serve(self, store_url: str, artifacts: Path, tokens: str) -> Iterator[str]:
        """A server over ``store_url`` with ``CHACHAML_TOKENS=tokens``; yields its base URL."""
        port = free_port()
        log = artifacts.parent / f"serve-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHACHAML_", "CHACHA_"))}
        argv = ["serve", "--store", store_url, "--artifacts", str(artifacts), "--port", str(port)]
        pid = self.spawn(argv, env | {"CHACHAML_TOKENS": tokens}, log)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, lambda: None if alive(pid) else log.read_text())
            yield base
        finally:
            end(pid)


_shared: ServerFactory | None = None


def shared_factory() -> ServerFactory:
    """This test process's factory, started on first use and closed when the process exits."""
    global _shared
    if _shared is None:
        _shared = ServerFactory()
        atexit.register(_shared.close)
    return _shared


def alive(pid: int) -> bool:
    """Whether the process ``pid`` still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def end(pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` to a forked server and wait for it to go (SIGKILL after 10 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.01)


if __name__ == "__main__":
    _helper()
