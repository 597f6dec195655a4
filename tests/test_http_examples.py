"""The README's HTTP API examples against a real server: its curl requests and stdlib snippet."""

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
from tests.support.fork_server import ServerFactory
from tests.test_docs import SERVER_EXAMPLE, code_blocks

README_URL = "http://127.0.0.1:8080"


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


def test_the_go_example_uses_only_the_standard_library_and_the_same_endpoints() -> None:
    source = (Path(__file__).parents[1] / "examples" / "go" / "main.go").read_text()
    imports = re.search(r"import \((.*?)\)", source, flags=re.S)
    assert imports is not None
    assert sorted(imports.group(1).split()) == sorted(
        ['"bytes"', '"encoding/json"', '"fmt"', '"net/http"', '"os"']
    )  # the standard library only
    for path in ('"/api/w/runs"', '"/params"', '"/metrics"', '"/end"'):
        assert path in source
