"""Finding 11, live: a running ``chachaml serve`` follows each token change within seconds,
without a restart, and a server listening beyond loopback starts in team mode."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.mcp_seed import CHACHAML, free_port, stderr_if_exited, wait_until_serving
from tests.support.waiting import wait_for


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    return subprocess.run([CHACHAML, *argv], capture_output=True, text=True, timeout=60, env=env)


@contextmanager
def serve(url: str, tmp_path: Path, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """``chachaml serve`` over ``url``; yields its base URL and, once it stops, its stderr."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    cmd = [CHACHAML, "serve", "--store", url, "--artifacts", str(tmp_path / "a"),
           "--port", str(port), *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    said: list[str] = []
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", lambda: stderr_if_exited(proc))
        yield f"http://127.0.0.1:{port}", said
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            said.append(proc.stderr.read().decode())
            proc.stderr.close()


def wait_for_status(send: Callable[[], httpx.Response], status: int, why: str) -> None:
    wait_for(lambda: send().status_code == status, 10, why)


def test_a_running_server_switches_to_team_mode_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with serve(url, tmp_path) as (base, said), httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/api/w/runs", json={}).status_code == 201  # local mode
        made = _cli("token", "create", "--store", url, "--user", "ada")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        anonymous = lambda: http.post("/api/w/runs", json={})  # noqa: E731
        wait_for_status(anonymous, 401, "anonymous writes still open after 10 s")
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/w/runs", json={}, headers=auth).status_code == 201
        assert http.get("/api/runs").status_code == 401  # reads need the token too
        assert _cli("token", "revoke", "--store", url, "1").returncode == 0
        with_token = lambda: http.post("/api/w/runs", json={}, headers=auth)  # noqa: E731
        wait_for_status(with_token, 401, "the revoked token still works after 10 s")
        # no token is left: the server is back in local mode
        assert http.get("/api/runs").status_code == 200
    assert "local mode" in said[0]  # the start-up line names the mode


def test_a_non_loopback_server_starts_in_team_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    assert _cli("token", "create", "--store", url, "--user", "ada").returncode == 0
    with serve(url, tmp_path, "--host", "0.0.0.0") as (base, said):
        assert httpx.post(f"{base}/mcp", json={}, timeout=10).status_code == 401
    assert "team mode" in said[0]
