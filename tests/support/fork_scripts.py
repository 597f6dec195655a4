"""Client scripts in processes of their own that start without paying for their imports.

The MLflow client tests run the real ``mlflow`` client in a child process (its global state,
threads and environment variables are not the test's), and importing ``mlflow`` with
scikit-learn, pandas and matplotlib costs about 2 CPU-seconds per child. A helper process
imports them once, then forks a child per script: a fresh process with its own environment
and output, in which ``import mlflow`` is already done.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PRELOAD = ("mlflow", "mlflow.sklearn", "sklearn.linear_model", "pandas", "matplotlib.pyplot")
#: ``pytestmark`` of every module whose MLflow client scripts run here: one worker starts the
#: helper (importing :data:`PRELOAD` costs 2.6 CPU-s) and runs all of them
ONE_WORKER = pytest.mark.xdist_group("mlflow-client")


def _child(request: dict[str, Any]) -> int:
    """In the forked child: the request's environment and output, then its script."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, name in ((1, "out"), (2, "err")):
        os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    try:
        exec(compile(request["script"], "<script>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _helper() -> None:
    """The helper process: one JSON request per stdin line; the child's pid, then its code."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        __import__(name)
    # the imported modules live as long as each child: out of the collector's reach, a
    # child's collections do not rescan them
    gc.collect()
    gc.freeze()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


@dataclass(frozen=True)
class Done:
    """What a script did: its exit code and output."""

    returncode: int
    stdout: str
    stderr: str


class ScriptRunner:
    """Runs Python scripts as forked children of one helper that imported :data:`PRELOAD`."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._count = 0
        self._pending = b""
        self._helper = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )

    def _line(self, timeout: float | None) -> int | None:
        """The helper's next line as a number; None if none came within ``timeout`` s."""
        assert self._helper.stdout is not None
        fd = self._helper.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the script helper exited")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return int(line)

    def close(self) -> None:
        """Stop the helper (it exits when its stdin closes)."""
        assert self._helper.stdin is not None and self._helper.stdout is not None
        self._helper.stdin.close()
        self._helper.wait(timeout=30)
        self._helper.stdout.close()

    def run(self, script: str, env: dict[str, str], timeout: float) -> Done:
        """Run ``script`` with exactly ``env``; kill it after ``timeout`` seconds."""
        assert self._helper.stdin is not None and self._helper.stdout is not None
        self._count += 1
        out, err = (self._folder / f"script-{self._count}.{n}" for n in ("out", "err"))
        request = {"script": script, "env": env, "out": str(out), "err": str(err)}
        self._helper.stdin.write(json.dumps(request).encode() + b"\n")
        self._helper.stdin.flush()
        pid = self._line(None)
        assert pid is not None
        code = self._line(timeout)
        stderr = ""
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            code = self._line(None)
            stderr = f"(killed after {timeout} s)\n"
        assert code is not None
        stderr = err.read_text(errors="replace") + stderr
        return Done(code, out.read_text(errors="replace"), stderr)


_shared: ScriptRunner | None = None


def shared_runner() -> ScriptRunner:
    """This test process's runner, started on first use and stopped when the process exits."""
    global _shared
    if _shared is None:
        _shared = ScriptRunner(Path(tempfile.mkdtemp(prefix="chachaml-scripts-")))
        atexit.register(_shared.close)
    return _shared


if __name__ == "__main__":
    _helper()
