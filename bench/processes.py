"""Child processes of the benchmarks: ``chachaml serve``, and modules of this package.

Children get this checkout on ``PYTHONPATH`` (the package's parent folder first), so they
run the same ``chachaml`` and ``bench`` as the parent whatever their working directory and
whatever is installed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``CHACHAML_*`` settings, this checkout first on
    ``PYTHONPATH``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


def module_command(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    """A running ``chachaml serve``: its URL and its process id."""

    url: str
    pid: int

    def memory(self) -> tuple[int, int]:
        """Its resident memory now and at its peak (``VmRSS``, ``VmHWM``), in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status)
        return (int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024)

    def cpu(self) -> float:
        """The CPU seconds it has used so far (user and system)."""
        return _stat_cpu(_stat(self.pid))

    def tree_cpu(self) -> float:
        """The CPU seconds used so far by it and its live descendants (a server's workers)."""
        stats: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):  # gone meanwhile
                    stats[int(entry.name)] = _stat(int(entry.name))
        tree, grew = {self.pid}, True
        while grew:
            more = {pid for pid, fields in stats.items() if int(fields[1]) in tree}
            grew = not more <= tree
            tree |= more
        return sum(_stat_cpu(fields) for pid, fields in stats.items() if pid in tree)


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command's name (state first)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def _stat_cpu(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def chachaml_serve(root: Path, store: str, tokens: str = "") -> Iterator[str]:
    """``chachaml serve`` on loopback over ``store``; yields its URL once ``/health`` answers.

    ``tokens`` (``user:token,...``) puts it in team mode; empty leaves it in local mode.
    """
    with serve_process(root, store, tokens) as served:
        yield served.url


@contextmanager
def serve_process(root: Path, store: str, tokens: str = "") -> Iterator[Served]:
    """As :func:`chachaml_serve`, yielding the process id too."""
    port = free_port()
    cmd = module_command("chachaml.cli", "serve", "--port", str(port), "--store", store,
                         "--artifacts", str(root / "artifacts"))  # fmt: skip
    env = child_env({"CHACHAML_TOKENS": tokens})
    log = root / f"serve-{port}.log"  # a file, not a pipe nobody drains while it runs
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1) as probe:  # one client: each new one costs ~25 ms of CPU
            while True:
                try:
                    if probe.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"chachaml serve did not start:\n{tail}")
                time.sleep(0.05)
        yield Served(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
