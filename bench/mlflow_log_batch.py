"""The ``log_batch`` part of the MLflow protocol benchmark, and the client's own floor under it.

``MlflowClient.log_batch`` of 1,000 points costs the client tens of milliseconds before any
server sees a byte: 1,000 ``Metric`` objects made again, 1,000 protobuf messages, protobuf's
``MessageToDict``, MLflow's int64 fix-up and a pretty-printed ``json.dumps`` (``indent=2``,
which the standard library encodes in pure Python), parsed back and dumped again by
``requests``. The same calls against :mod:`bench.null_responder`, a server doing no work,
time that floor; MLflow's time per call over the floor's is the most any server could reach
against MLflow through this client.

Each target is timed by the wall clock and by this process's CPU clock (the client's work),
its server by its own CPU clock, and the TCP connections the client opens to it are counted:
a wall time far above the two CPU times on an idle machine would be a stall (Nagle and
delayed ACKs), many connections a server that closes them.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BATCH = 1000  # MLflow's limit of metrics per log_batch call
TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


@dataclass
class Target:
    """A server the client logs to: the client, the run, the server's CPU clock."""

    client: Any
    run_id: str
    port: int
    server_cpu: Callable[[], float]
    calls: int = 0
    points: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process's: the client's own work
    server_cpu_s: float = 0.0
    gaps: list[float] = field(default_factory=list)  # per call: wall less the client's CPU
    new_connections: int = 0

    def ms(self, seconds: float) -> float:
        """``seconds`` per call, in ms."""
        return seconds / max(self.calls, 1) * 1e3

    def describe(self) -> str:
        """Per call: wall, client CPU, server CPU, the smallest wall-less-CPU gap; connections."""
        least, median = min(self.gaps, default=0), statistics.median(self.gaps or [0])
        return (
            f"{self.ms(self.wall_s):.1f} ms a call (client CPU {self.ms(self.cpu_s):.1f},"
            f" server CPU {self.ms(self.server_cpu_s):.1f}, wall less client CPU at least"
            f" {least * 1e3:.1f} and {median * 1e3:.1f} median; {self.new_connections} new"
            f" connection(s) for {self.calls} calls)"
        )


def connections_to(port: int) -> set[tuple[int, int]]:
    """Loopback TCP sockets, in any state, whose remote port is ``port``: (local port, inode).

    Linux only (empty elsewhere). A client keeping its connection open shows one; one that
    reconnects every call leaves a socket per call in TIME_WAIT for a minute.
    """
    found: set[tuple[int, int]] = set()
    for table in TCP_TABLES:
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local, remote = cols[1], cols[2]
                if int(remote.rsplit(":", 1)[1], 16) == port:
                    found.add((int(local.rsplit(":", 1)[1], 16), int(cols[9])))
    return found


def log_batches(targets: dict[str, Target], points: int, budget_s: float) -> None:
    """Batches of 1,000 points to each target in turn; MLflow's calls stop at the budget."""
    from mlflow.entities import Metric

    before = {name: connections_to(t.port) for name, t in targets.items()}
    server_cpu = {name: t.server_cpu() for name, t in targets.items()}
    for first in range(0, points, BATCH):
        now = int(time.time() * 1000)
        metrics = [
            Metric("loss", 1.0 / (s + 1), now, s) for s in range(first, min(first + BATCH, points))
        ]
        for name, t in targets.items():
            if name == "MLflow" and t.wall_s > budget_s:
                continue
            began, cpu = time.perf_counter(), time.process_time()
            t.client.log_batch(t.run_id, metrics=metrics)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
            t.wall_s += wall
            t.cpu_s += cpu
            t.gaps.append(wall - cpu)
            t.calls += 1
            t.points += len(metrics)
    for name, t in targets.items():
        t.server_cpu_s = t.server_cpu() - server_cpu[name]
        t.new_connections = len(connections_to(t.port) - before[name])


def log_batch_bodies(points: int) -> list[bytes]:
    """The bodies ``MlflowClient.log_batch`` sends for ``points`` points (run id ``RUN_ID_HERE``).

    Encoded by MLflow's own code, once, before any clock starts, then parsed and dumped again
    as ``requests`` does with MLflow's ``json=`` argument: the bytes that go on the wire.
    Sent as they are, they time the servers alone, without the client's work.
    """
    from mlflow.entities import Metric
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import message_to_json

    bodies = []
    now = int(time.time() * 1000)
    for first in range(0, points, BATCH):
        steps = range(first, min(first + BATCH, points))
        metrics = [Metric("loss", 1.0 / (s + 1), now, s).to_proto() for s in steps]
        text = message_to_json(LogBatch(run_id="RUN_ID_HERE", metrics=metrics))
        bodies.append(json.dumps(json.loads(text), allow_nan=False).encode())
    return bodies


def post_batches(
    runs: dict[str, str], urls: dict[str, str], bodies: list[bytes], budget_s: float
) -> dict[str, tuple[int, float]]:
    """The pre-encoded bodies to each server in turn (one HTTP connection each)."""
    sent = dict.fromkeys(runs, 0)
    took = dict.fromkeys(runs, 0.0)
    headers = {"Content-Type": "application/json"}
    with contextlib.ExitStack() as stack:
        http = {
            n: stack.enter_context(httpx.Client(base_url=u, timeout=600)) for n, u in urls.items()
        }
        for body in bodies:
            for name, run in runs.items():
                if name == "MLflow" and took[name] > budget_s:
                    continue
                content = body.replace(b"RUN_ID_HERE", run.encode())
                began = time.perf_counter()
                answer = http[name].post("/api/2.0/mlflow/runs/log-batch", content=content,
                                         headers=headers)  # fmt: skip
                took[name] += time.perf_counter() - began
                answer.raise_for_status()
                sent[name] += BATCH
    return {n: (sent[n], took[n]) for n in runs}
