"""``chachaml import mlflow --from http://...``: a real ``mlflow server`` as the source.

The server (SQLite backend, artifacts proxied as ``mlflow-artifacts:``) runs as a child
process; the store is seeded and imported over HTTP, into SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chachaml.cli import main
from chachaml.client.client import Client
from tests.support.mcp_seed import free_port
from tests.support.mlflow_seed import EXPECTED, Seeded, seed_mlflow
from tests.support.services import postgres_schema
from tests.support.waiting import http_status, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # MLflow's, not chachaml's
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def _answers(url: str) -> bool:
    return http_status(f"{url}/health") == 200


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    """``mlflow server`` on a free port, seeded through its REST API and artifact proxy."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # MLflow 3's server also starts a job runner and seven Huey consumers (each a Python
    # importing mlflow, ~10 CPU-s in all); the import reads only the tracking API
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(url), timeout=90, why="mlflow server to answer")
        yield url, seed_mlflow(url, None, folder)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chachaml.db'}"
    else:
        with postgres_schema() as url:
            yield url


def test_a_tracking_server_imports_through_its_artifact_proxy(
    mlflow_server: tuple[str, Seeded],
    store_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, seeded = mlflow_server
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = ["--store", store_url, "--artifacts", str(tmp_path / "a")]
    assert main(["import", "mlflow", "--from", url, *store]) == 0
    out = capsys.readouterr().out
    for kind, n in EXPECTED.items():
        assert f"{kind.replace('_', ' ')} ".ljust(15) + f"{n}" in out, (kind, out)
    assert out.rstrip().endswith("counts verified")
    client = Client(store=store_url, artifacts=str(tmp_path / "a"))
    try:
        run = client.get_run(seeded.runs["sweep"])
        assert run.metric_summaries["loss"].count == 1000
        assert client.load_artifact(run.id, "model/model.pkl") == bytes(range(256)) * 40
    finally:
        client.close()
    assert main(["import", "mlflow", "--from", url, *store]) == 0
    assert "nothing new" in capsys.readouterr().out
