"""The README's examples run as a reader would run them, each in its own process.

Its Python examples in a fresh interpreter over the embedded store; its curl requests and
stdlib snippet against a real ``chachaml serve``; its chat example against the fake provider.
The README's other promises are checked in :mod:`tests.test_docs`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REMOTE_TOKEN
from tests.support.chat_cli import best_iris, chat_environment
from tests.support.fake_providers import FakeProvider
from tests.support.fork_server import ServerFactory
from tests.support.mcp_seed import IRIS
from tests.support.readme import CLUSTER_EXAMPLE, CONSUMER_EXAMPLE, SERVER_EXAMPLE, code_blocks

README_URL = "http://127.0.0.1:8080"


def test_readme_python_examples_run(tmp_path: Path) -> None:
    # later blocks build on earlier ones; the server ones run below
    # (the broker consumers follow forever: tests/e2e/test_event_brokers.py runs them)
    blocks = [b for b in code_blocks("python")
              if not b.startswith((SERVER_EXAMPLE, CONSUMER_EXAMPLE, CLUSTER_EXAMPLE))]  # fmt: skip
    example = "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "0.9" in result.stdout and "{'epochs': 3, 'lr': 0.01}" in result.stdout
    assert "[64, 32]" in result.stdout
    assert (tmp_path / "chachaml.db").exists()  # the embedded default store


@pytest.fixture
def server(server_factory: ServerFactory, tmp_path: Path) -> Iterator[str]:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    with server_factory.serve(db, tmp_path / "artifacts", f"tester:{REMOTE_TOKEN}") as url:
        yield url


def _curl_commands() -> list[list[str]]:
    (block,) = [b for b in code_blocks("bash") if "/api/w/runs" in b]
    joined = block.replace("\\\n", " ")
    return [shlex.split(line[line.index("curl") :].split(" | ")[0])
            for line in joined.splitlines() if "curl " in line]  # fmt: skip


def test_the_readme_curl_requests_log_a_run(server: str, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"weights")
    auth = {"Authorization": f"Bearer {REMOTE_TOKEN}"}
    run_id = ""
    with httpx.Client(headers=auth) as http:
        for argv in _curl_commands():
            url = argv[-1].replace(README_URL, server).replace("$RUN", run_id)
            assert argv[:4] == ["curl", "-s", "-H", "$H"], argv
            flag, value = argv[4:6]
            if flag == "--json":  # curl --json sends Content-Type: application/json
                headers = {"Content-Type": "application/json", "Accept": "application/json"}
                response = http.post(url, content=value.encode(), headers=headers)
            else:
                field, _, name = value.partition("=@")
                files = {field: (name, (tmp_path / name).read_bytes())}
                response = http.post(url, files=files)
            assert response.is_success, (argv, response.text)
            run_id = run_id or response.json()["id"]
        run = http.get(f"{server}/api/store/v1/runs/{run_id}").json()
    assert (run["status"], run["created_by"]) == ("completed", "tester")
    assert run["params"] == {"lr": 0.1, "depth": 3}
    assert run["metrics"] == {"accuracy": 0.94, "loss": 0.3}
    assert [a["name"] for a in run["artifacts"]] == ["model.pkl"]


def test_the_readme_stdlib_snippet_logs_a_run(server: str) -> None:
    (snippet,) = [b for b in code_blocks("python") if b.startswith(SERVER_EXAMPLE)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    env |= {"CHACHAML_URL": server, "CHACHAML_TOKEN": REMOTE_TOKEN}
    done = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    auth = {"Authorization": f"Bearer {REMOTE_TOKEN}"}
    run = httpx.get(f"{server}/api/store/v1/runs/{run_id}", headers=auth).json()
    assert (run["status"], run["created_by"], run["experiment"]) == ("completed", "tester", "iris")
    assert run["params"] == {"lr": 0.1, "depth": 3}
    assert run["metric_summaries"]["loss"]["count"] == 100


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    """``chachaml chat``'s environment, pointed at the fake provider over a seeded store."""
    yield from chat_environment(monkeypatch, tmp_path)


def test_the_readme_chat_example_runs(fake: FakeProvider, tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Chat with your ML data", 1)[1]
    example = re.findall(r"```py\n(.*?)```", section, flags=re.S)[0]
    best_iris(fake)
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert IRIS in result.stdout and "best_run {'metric': 'acc'" in result.stdout
