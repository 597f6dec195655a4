"""A small, fully known store for the MCP tests: runs with fixed ids, times, metrics, a model.

mnist: OLD (2025-01-15, acc 0.70, lr 0.1), MID (2025-02-10, acc 0.92, lr 0.01, tagged, noted),
NEW (2025-03-05, failed, acc 0.40); iris: IRIS (2025-03-20, acc 0.97, by "bo").
Model "digits": v1 from OLD (staging), v2 from MID (production).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio

from chachaml.records.runs import Dataset, MetricChunk, NewRun, Table
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.server_state import ServerStore
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import registry as registry_ops
from tests.support.waiting import http_status, wait_for

CHACHAML = str(Path(sys.executable).with_name("chachaml"))
OLD, MID, NEW, IRIS = "a" * 32, "b" * 32, "c" * 32, "d" * 32
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d6a4a30000000049454e44ae426082"
)


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _chunk(run_id: str, key: str, values: list[float], start: float) -> MetricChunk:
    n = len(values)
    return MetricChunk(
        run_id=run_id,
        key=key,
        count=n,
        steps=struct.pack(f"<{n}q", *range(n)),
        values=struct.pack(f"<{n}d", *values),
        timestamps=struct.pack(f"<{n}d", *(start + i for i in range(n))),
        last_value=values[-1],
        last_step=n - 1,
        last_time=start + n - 1,
        min_value=min(values),
        max_value=max(values),
    )


async def _run(
    store: ServerStore,
    run_id: str,
    experiment: str,
    name: str,
    started: str,
    user: str,
    params: dict[str, float | int],
    metrics: dict[str, list[float]],
    error: str | None = None,
) -> None:
    start = _at(started)
    await store.create_run(
        NewRun(
            id=run_id,
            experiment=experiment,
            name=name,
            created_by=user,
            started_at=start,
            heartbeat_timeout=3600.0,
        )
    )
    await store.log_params(run_id, params)
    await store.log_metrics([_chunk(run_id, k, vals, start) for k, vals in metrics.items()])
    await store.log_dataset(
        run_id, Dataset(role="train", name=f"{experiment}-train", n_rows=60000, n_cols=784)
    )
    await store.end_run(run_id, "failed" if error else "completed", error, start + 600)


async def seed(store: ServerStore, artifact_root: Path) -> None:
    """Fill an empty store with the runs, artifacts and model described above."""
    artifacts = open_artifact_store(str(artifact_root))
    await store.create_experiment("mnist", "handwritten digits", "ana")
    await _run(
        store,
        OLD,
        "mnist",
        "baseline",
        "2025-01-15T10:00:00",
        "ana",
        {"lr": 0.1, "depth": 2},
        {"acc": [0.5, 0.6, 0.7], "loss": [1.0, 0.8, 0.6]},
    )
    await _run(
        store,
        MID,
        "mnist",
        "wider",
        "2025-02-10T10:00:00",
        "ana",
        {"lr": 0.01, "depth": 4},
        {"acc": [0.6, 0.8, 0.92], "loss": [0.9, 0.5, 0.3]},
    )
    await _run(
        store,
        NEW,
        "mnist",
        "deeper",
        "2025-03-05T10:00:00",
        "ana",
        {"lr": 0.01, "depth": 8},
        {"acc": [0.4], "loss": [2.0]},
        error="CUDA out of memory",
    )
    await _run(
        store,
        IRIS,
        "iris",
        "svm",
        "2025-03-20T10:00:00",
        "bo",
        {"C": 1.0},
        {"acc": [0.9, 0.97]},
    )
    await store.set_tags(MID, {"reviewed": "yes"})
    await store.set_note(MID, "Promising: lower lr helps.")
    for run_id in (OLD, MID):
        await artifact_ops.put_bytes(
            store,
            artifacts,
            run_id,
            "model.bin",
            run_id.encode(),
            content_type="application/octet-stream",
            serializer="bytes",
        )
    await artifact_ops.put_bytes(
        store,
        artifacts,
        MID,
        "notes.txt",
        b"trained on 4 GPUs",
        content_type="text/plain",
        serializer="text",
    )
    table = Table(headers=["label", "recall"], rows=[["0", 0.99], ["1", 0.97]])
    await artifact_ops.put_bytes(
        store,
        artifacts,
        MID,
        "recall",
        table.model_dump_json().encode(),
        content_type="application/vnd.chachaml.table+json",
        serializer="table",
    )
    await artifact_ops.put_bytes(
        store, artifacts, MID, "curve.png", PNG_1PX, content_type="image/png", serializer="bytes"
    )
    await registry_ops.register_model(store, "digits", OLD, "model.bin", "ana")
    await registry_ops.register_model(store, "digits", MID, "model.bin", "ana")
    await registry_ops.promote(store, "digits", 1, "staging", "ana")
    await registry_ops.promote(store, "digits", 2, "production", "ana")


@asynccontextmanager
async def open_seeded(path: Path) -> AsyncIterator[ServerStore]:
    """A seeded SQLite store under ``path`` (``seeded.db``), open for the block."""
    store = await open_store(f"sqlite:///{path / 'seeded.db'}")
    try:
        await seed(store, path / "artifacts")
        yield store
    finally:
        await store.close()


async def seeded_store(path: Path) -> str:
    """Create and seed a SQLite store under ``path``; returns its URL."""
    async with open_seeded(path):
        pass
    return f"sqlite:///{path / 'seeded.db'}"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(base: str, exited: Callable[[], str | None]) -> None:
    """Poll ``base``/health until it answers; fail with ``exited()`` if the server died."""

    def up() -> bool:
        if http_status(f"{base}/health") == 200:
            return True
        died = exited()
        assert died is None, f"chachaml serve exited: {died}"
        return False

    wait_for(up, 60, "chachaml serve to answer /health")


def stderr_if_exited(proc: subprocess.Popen[bytes]) -> str | None:
    """What a server process wrote to stderr, once it has exited; ``None`` while it runs."""
    if proc.poll() is None:
        return None
    return proc.stderr.read().decode() if proc.stderr else ""


@contextmanager
def serving(store_url: str, artifacts: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``chachaml serve`` on a free loopback port (``env`` added to its environment); yields
    the MCP endpoint URL. Forked from this process's pre-imported helper
    (:func:`tests.support.fork_server.shared_factory`): the command's code path without the
    3.5 CPU-seconds of its imports."""
    from tests.support.fork_server import alive, end, shared_factory  # it imports this module

    port = free_port()
    log = artifacts.parent / f"serve-{port}.log"
    argv = ["serve", "--store", store_url, "--artifacts", str(artifacts), "--port", f"{port}"]
    pid = shared_factory().spawn(argv, {**os.environ, **(env or {})}, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, lambda: None if alive(pid) else log.read_text())
        yield f"{base}/mcp"
    finally:
        end(pid)


@contextmanager
def serving_seeded(
    path: Path, seed_store: Callable[[Path], Awaitable[str]], env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``chachaml serve`` over the store ``seed_store(path)`` makes; yields the server's base URL
    (the browser tests' module fixture)."""
    url = anyio.run(seed_store, path)
    with serving(url, path / "artifacts", env) as mcp_url:
        yield mcp_url.removesuffix("/mcp")
