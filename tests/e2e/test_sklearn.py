"""The sklearn integration in fresh processes: a registered model loads there; the examples run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from chachaml.client.client import Client
from chachaml.client.integrations.sklearn import train_and_evaluate
from chachaml.client.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


LOADER = textwrap.dedent(
    """
    import json, sys
    from sklearn.datasets import load_iris
    from chachaml.client.registry import Registry
    from chachaml.client.client import Client

    client = Client(store=sys.argv[1], artifacts=sys.argv[2])
    model = Registry(client).load_model("iris")
    X, _ = load_iris(return_X_y=True, as_frame=True)
    print(json.dumps(model.predict(X).tolist()))
    client.close()
    """
)


def test_iris_round_trip_through_a_fresh_process(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    result = train_and_evaluate(
        LogisticRegression(max_iter=500), X, y, X, y, register_as="iris", client=client
    )
    assert result.version is not None
    Registry(client).promote("iris", result.version.version, "production")
    client.close()
    out = subprocess.run(
        [sys.executable, "-c", LOADER, store_url, str(tmp_path / "artifacts")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == result.estimator.predict(X).tolist()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("sklearn_iris.py", "production and challenger agree"),
        ("sklearn_regression.py", "version 1 (production)"),
    ],
)
def test_examples_run(tmp_path: Path, script: str, expected: str) -> None:
    env = {
        **os.environ,
        "CHACHAML_STORE": f"sqlite:///{tmp_path / 'examples.db'}",
        "CHACHAML_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    out = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert expected in out.stdout
