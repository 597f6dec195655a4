"""Finding 8: memory and event-loop denial of service.

Real ``chachaml serve`` subprocesses; the server's resident memory is read with psutil while
real HTTP clients upload, download and post batches at their size limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.fork_server import ServerFactory
from tests.support.serve_proc import ServeProcess

TOKEN = "bob-limits-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = AUTH | {"Content-Type": "application/json"}
MiB = 1 << 20
BIG = 200 * MiB
RSS_GROWTH = 100 * MiB


@pytest.fixture
def server(tmp_path: Path, server_factory: ServerFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(
        f"sqlite:///{tmp_path / 'limits.db'}", tmp_path / "artifacts",
        {"CHACHAML_TOKENS": f"bob:{TOKEN}"}, server_factory,
    )  # fmt: skip
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _run(http: httpx.Client) -> str:
    created = http.post("/api/w/runs", json={"experiment": "limits"}, headers=JSON)
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    return run_id


def _points_body(size: int) -> bytes:
    """A metric batch of plain points padded with whitespace to exactly ``size`` bytes."""
    point = '{"key":"loss","value":0.12345678901234,"step":%d}'
    head, tail = b'{"metrics":[', b"]}"
    first = 10**6  # every step has 7 digits, so every point is equally long
    n = (size - len(head) - len(tail)) // (len(point % first) + 1)
    body = head + ",".join(point % (first + i) for i in range(n)).encode() + tail
    return body + b" " * (size - len(body))


class PeakRss:
    """The highest resident memory of a process, sampled every 5 ms while in use."""

    def __init__(self, server: ServeProcess) -> None:
        self._server = server
        self._stop = threading.Event()
        self.peak = server.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._server.rss())
            self._stop.wait(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _big_file(path: Path) -> str:
    """Write ``BIG`` random bytes; their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(BIG // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def test_each_route_caps_its_body_to_its_purpose(server: ServeProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        run_id = _run(http)
        note = json.dumps({"note": "x" * (2 * MiB)})
        too_long = http.post(f"/api/w/runs/{run_id}/note", content=note, headers=JSON)
        assert too_long.status_code == 413, too_long.text
        assert too_long.json()["error"]["code"] == "too_large"
        batch = _points_body(17 * MiB)
        refused = http.post(f"/api/w/runs/{run_id}/metrics", content=batch, headers=JSON)
        assert refused.status_code == 413, refused.text
        ok = http.post(f"/api/w/runs/{run_id}/metrics", content=_points_body(MiB), headers=JSON)
        assert ok.status_code == 200, ok.text
        spec = http.get("/api/openapi.json", headers=AUTH).json()
        described = spec["paths"]["/api/w/runs/{run_id}/metrics"]["post"]["requestBody"]
        assert "16 MiB" in described["description"]


def test_healthz_answers_while_a_max_size_batch_is_processed(server: ServeProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        run_id = _run(http)
        batch = _points_body(16 * MiB - 1024)
        result: list[httpx.Response] = []

        def post() -> None:
            with httpx.Client(base_url=server.url, timeout=120) as other:
                result.append(other.post(f"/api/w/runs/{run_id}/metrics", content=batch,
                                         headers=JSON))  # fmt: skip

        sender = threading.Thread(target=post)
        begun = time.monotonic()
        sender.start()
        latencies: list[float] = []
        while sender.is_alive():
            started = time.monotonic()
            assert http.get("/healthz").status_code == 200
            if sender.is_alive():  # answered while the batch was still being handled
                latencies.append(time.monotonic() - started)
        sender.join()
        took = time.monotonic() - begun
        assert result[0].status_code == 200, result[0].text
        assert len(latencies) >= 5, "the batch was handled too fast to measure anything"
        # a loop blocked while the batch is decoded and stored would hold one /healthz for
        # about as long as the batch takes; on a busy machine any request may wait ~0.5 s
        assert max(latencies) < max(0.5, took / 3), (took, sorted(latencies)[-5:])


def _concurrently(calls: list[Callable[[], str]]) -> list[str]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_concurrent_downloads_of_a_large_artifact_do_not_grow_memory(
    server: ServeProcess, tmp_path: Path
) -> None:
    source = tmp_path / "weights.bin"
    digest = _big_file(source)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=300) as http:
        run_id = _run(http)
        with source.open("rb") as f:
            stored = http.post(f"/api/w/runs/{run_id}/artifacts", files={"file": ("w.bin", f)})
        assert stored.status_code == 201, stored.text
        uri = stored.json()["uri"]
        urls = [f"/api/artifacts/{run_id}/w.bin", f"/api/store/v1/objects/{uri}"] * 2

        def download(url: str) -> Callable[[], str]:
            def go() -> str:
                got = hashlib.sha256()
                with http.stream("GET", url) as response:
                    assert response.status_code == 200
                    for block in response.iter_bytes(MiB):
                        got.update(block)
                return got.hexdigest()

            return go

        download(urls[0])()  # the code paths are loaded before the baseline is taken
        before = server.rss()
        with PeakRss(server) as rss:
            assert _concurrently([download(u) for u in urls]) == [digest] * 4
    assert rss.peak - before < RSS_GROWTH, f"grew by {(rss.peak - before) / MiB:.0f} MiB"


def test_a_large_upload_does_not_grow_memory(server: ServeProcess, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    digest = _big_file(source)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=300) as http:
        run_id = _run(http)
        warm = http.post(f"/api/w/runs/{run_id}/artifacts", files={"file": ("s.bin", b"s")})
        assert warm.status_code == 201, warm.text
        before = server.rss()
        with PeakRss(server) as rss, source.open("rb") as f:
            stored = http.post(f"/api/w/runs/{run_id}/artifacts", files={"file": ("w.bin", f)})
        assert stored.status_code == 201, stored.text
        assert (stored.json()["sha256"], stored.json()["size"]) == (digest, BIG)
        assert rss.peak - before < RSS_GROWTH, f"grew by {(rss.peak - before) / MiB:.0f} MiB"
        with PeakRss(server) as raw, source.open("rb") as f:
            headers = {"Content-Type": "application/octet-stream"}
            obj = http.post("/api/w/objects", content=iter(lambda: f.read(MiB), b""),
                            headers=headers)  # fmt: skip
        assert obj.status_code == 201, obj.text
        assert obj.json()["sha256"] == digest
        assert raw.peak - before < RSS_GROWTH, f"grew by {(raw.peak - before) / MiB:.0f} MiB"
