"""A real ``chachaml serve`` subprocess that a test can SIGKILL and start again on its port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import psutil

from tests.support.fork_server import ServerFactory, alive, end
from tests.support.mcp_seed import free_port, stderr_if_exited, wait_until_serving


class ServeProcess:
    """``chachaml serve`` over one store on one loopback port, restartable after a kill.

    With a ``factory`` (the e2e ``server_factory`` fixture) each start is a fork of its
    pre-imported helper, which saves the 3.5 s of imports a new interpreter pays; without
    one it is a new ``python -m chachaml.cli serve`` process.
    """

    def __init__(
        self,
        store_url: str,
        artifacts: Path,
        env: Mapping[str, str],
        factory: ServerFactory | None = None,
    ) -> None:
        self.store_url = store_url
        self.artifacts = artifacts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHACHAML_", "CHACHA_"))}
        self._env = clean | dict(env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._factory = factory
        self._forked: int | None = None
        self._log = artifacts.parent / f"serve-{self.port}.log"

    def start(self) -> None:
        """Start the server and wait until it answers ``/health``."""
        argv = ["serve", "--store", self.store_url, "--artifacts", str(self.artifacts),
                "--port", str(self.port)]  # fmt: skip
        if self._factory is not None:
            pid = self._forked = self._factory.spawn(argv, self._env, self._log)
            try:
                wait_until_serving(self.url, lambda: None if alive(pid) else self._log.read_text())
            except BaseException:
                self.stop()
                raise
            return
        cmd = [sys.executable, "-m", "chachaml.cli", *argv]
        self._proc = subprocess.Popen(
            cmd, env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        proc = self._proc
        try:
            wait_until_serving(self.url, lambda: stderr_if_exited(proc))
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        """The server's process id."""
        if self._forked is not None:
            return self._forked
        assert self._proc is not None
        return self._proc.pid

    def rss(self) -> int:
        """The server's resident memory in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def kill(self) -> None:
        """SIGKILL the server, as a crash or an out-of-memory kill would."""
        if self._forked is not None:
            end(self._forked, signal.SIGKILL)
            self._forked = None
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self._forked is not None:
            end(self._forked)
            self._forked = None
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
