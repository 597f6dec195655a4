"""Finding 1: loading a model trusts scikit-learn's estimator classes, never its functions.

The gadget is a real skops file: a ``ConstructorFromReduceNode`` whose type is
``sklearn.utils._testing.check_output`` (``subprocess.check_output`` as scikit-learn imports
it), called by skops with arguments from the file. It is planted as a run's ``model``
artifact and registered as the production version, then read every way chachaml decodes
skops; its ``touch`` must never run.
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from mcp import Client as McpClient
from mcp_types import TextContent
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import chachaml as ml
from chachaml.client.client import Client
from chachaml.client.integrations import sklearn as tracked_sklearn
from chachaml.client.integrations.sklearn import SKOPS_CONTENT_TYPE
from chachaml.client.registry import Registry
from chachaml.errors import InvalidInput
from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store, skops
from chachaml.store.artifacts.skops import loads_estimator
from chachaml.tools import artifacts as artifact_ops
from tests.conftest import make_settings
from tests.support.skops_io import skops_io

# one worker imports skops (see tests.support.skops_io) for both modules that use it
pytestmark = pytest.mark.xdist_group("skops")

CHECK_OUTPUT = "sklearn.utils._testing.check_output"
TREE = "sklearn.tree._tree.Tree"


def _zip(schema: dict[str, Any], files: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
        for name, data in (files or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def gadget(marker: Path) -> bytes:
    """skops' own dump of a harmless argument tuple, wrapped in a call to ``check_output``."""
    args = skops_io().dumps((["sh", "-c", f"touch {marker}"],))
    inner = json.loads(zipfile.ZipFile(io.BytesIO(args)).read("schema.json"))
    schema = {
        "__class__": "check_output",
        "__module__": "sklearn.utils._testing",
        "__loader__": "ConstructorFromReduceNode",
        "content": inner,
        "__id__": 1,
        "protocol": inner["protocol"],
        "_skops_version": inner["_skops_version"],
    }
    return _zip(schema)


def crafted_tree() -> bytes:
    """A fitted decision tree whose child indices point far outside its node array."""
    fitted = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    original = zipfile.ZipFile(io.BytesIO(skops_io().dumps(fitted)))
    files: dict[str, bytes] = {}
    edited = 0
    for name in original.namelist():
        data = original.read(name)
        if name.endswith(".npy"):
            array = np.load(io.BytesIO(data), allow_pickle=False)
            if array.dtype.names and "left_child" in array.dtype.names:
                array["left_child"][array["left_child"] >= 0] = 10**9
                out = io.BytesIO()
                np.save(out, array, allow_pickle=False)
                data, edited = out.getvalue(), edited + 1
        files[name] = data
    assert edited == 1, "the tree's node array was not found"
    schema = json.loads(files.pop("schema.json"))
    return _zip(schema, files)


def test_the_gadget_is_real_it_runs_when_skops_is_told_to_trust_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = gadget(marker)
    assert skops_io().get_untrusted_types(data=data) == [CHECK_OUTPUT]
    skops_io().loads(data, trusted=[CHECK_OUTPUT])
    assert marker.exists()


def test_loads_estimator_refuses_a_scikit_learn_function(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(InvalidInput, match=f"not trusted: {CHECK_OUTPUT}; pass trusted="):
        loads_estimator(gadget(marker))
    assert not marker.exists()


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[tuple[str, Path, str, Path]]:
    """A SQLite store whose ``churn`` production version is the gadget: url, artifacts, run."""
    url, artifacts = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts"
    marker = tmp_path / "pwned"
    client = Client(store=url, artifacts=str(artifacts), settings=make_settings())
    try:
        with client.start_run("planted") as run:
            rt = client.runtime
            rt.call(
                partial(
                    artifact_ops.put_bytes,
                    rt.store,
                    rt.artifacts,
                    run.id,
                    "model",
                    gadget(marker),
                    content_type=SKOPS_CONTENT_TYPE,
                    serializer="skops",
                )
            )
        Registry(client).register_model("churn", "model", run.id, "production")
    finally:
        client.close()
    yield url, artifacts, run.id, marker
    assert not marker.exists(), "the gadget's command ran"


@pytest.fixture
def default_client_on(planted: tuple[str, Path, str, Path]) -> Iterator[None]:
    """Point the module-level API (``ml.load_model`` ...) at the planted store, then back."""
    default = ml.default_client()
    saved = default.settings
    ml.use_store(planted[0], str(planted[1]))
    try:
        yield
    finally:
        default.close()
        default.settings = saved


@pytest.mark.usefixtures("default_client_on")
def test_a_planted_production_model_is_refused_by_load_model_and_load_artifact(
    planted: tuple[str, Path, str, Path],
) -> None:
    _, _, run_id, marker = planted
    with pytest.raises(InvalidInput, match=f"not trusted: {CHECK_OUTPUT}"):
        ml.load_model("churn")
    with pytest.raises(InvalidInput, match=f"not trusted: {CHECK_OUTPUT}"):
        ml.load_artifact(run_id, "model")
    assert not marker.exists()


def read_over_mcp(url: str, artifacts: Path, run_id: str) -> tuple[bool, str]:
    """``read_artifact`` of a run's ``model`` through the MCP SDK's in-memory client."""

    async def read() -> tuple[bool, str]:
        store = await open_store(url)
        try:
            server = build_mcp(
                store, artifacts=open_artifact_store(str(artifacts)), toolsets=["artifacts"]
            )
            async with McpClient(server) as mcp:
                result = await mcp.call_tool("read_artifact", {"run_id": run_id, "name": "model"})
        finally:
            await store.close()
        block = result.content[0]
        assert isinstance(block, TextContent)
        return bool(result.is_error), block.text

    return anyio.run(read)


def test_a_planted_model_is_refused_by_the_mcp_read_artifact_tool(
    planted: tuple[str, Path, str, Path],
) -> None:
    url, artifacts, run_id, marker = planted
    is_error, text = read_over_mcp(url, artifacts, run_id)
    assert is_error and f"not trusted: {CHECK_OUTPUT}" in text
    assert not marker.exists()


def test_the_mcp_read_artifact_tool_shows_an_ordinary_model(tmp_path: Path) -> None:
    url, artifacts = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts"
    client = Client(store=url, artifacts=str(artifacts), settings=make_settings())
    try:
        with client.start_run("fit") as run:
            tracked_sklearn.tracked_fit(
                LogisticRegression(C=0.5), [[0.0], [1.0]], [0, 1], client=client
            )
    finally:
        client.close()
    is_error, text = read_over_mcp(url, artifacts, run.id)
    assert not is_error and "LogisticRegression(C=0.5)" in text


def test_a_crafted_tree_is_refused_without_trusted(client: Client) -> None:
    data = crafted_tree()
    assert skops_io().get_untrusted_types(data=data) == [TREE]
    with pytest.raises(InvalidInput, match=rf'pass trusted=\["{TREE}"\]'):
        loads_estimator(data)
    with client.start_run("tree") as run:
        rt = client.runtime
        rt.call(
            partial(
                artifact_ops.put_bytes,
                rt.store,
                rt.artifacts,
                run.id,
                "model",
                data,
                content_type=SKOPS_CONTENT_TYPE,
                serializer="skops",
            )
        )
    Registry(client).register_model("tree", "model", run.id, "production")
    with pytest.raises(InvalidInput, match=rf'pass trusted=\["{TREE}"\]'):
        Registry(client).load_model("tree")
    with pytest.raises(InvalidInput, match=rf'pass trusted=\["{TREE}"\]'):
        client.load_artifact(run.id, "model")


def test_the_implicit_trust_set_is_classes_only() -> None:
    names = skops.implicitly_trusted()
    assert "sklearn.linear_model._logistic.LogisticRegression" in names
    assert "sklearn.pipeline.Pipeline" in names
    assert CHECK_OUTPUT not in names and TREE not in names
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" not in names
    assert set(skops.HELPER_TYPES) <= names
    for name in names:
        module, _, attr = name.rpartition(".")
        found = getattr(importlib.import_module(module), attr)
        assert isinstance(found, type), f"{name} is not a class"


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _register(client: Client, name: str, estimator: Any, X: Any, y: Any) -> str:
    result = tracked_sklearn.train_and_evaluate(
        estimator, X, y, X, y, register_as=name, stage="production", client=client
    )
    return result.run_id


def test_a_logistic_regression_and_a_scaled_pipeline_round_trip(
    client: Client, iris: tuple[Any, Any]
) -> None:
    X, y = iris
    fitted = {
        "logreg": LogisticRegression(max_iter=500),
        "scaled": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    }
    for name, estimator in fitted.items():
        run_id = _register(client, name, estimator, X, y)
        loaded = Registry(client).load_model(name)
        assert type(loaded) is type(estimator)
        np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
        from_artifact = client.load_artifact(run_id, "model")
        np.testing.assert_array_equal(from_artifact.predict(X), estimator.predict(X))


def test_a_column_transformer_pipeline_with_an_imputer_round_trips(
    client: Client, iris: tuple[Any, Any]
) -> None:
    X, y = iris
    X = X.assign(size=np.where(X["sepal length (cm)"] > 5.8, "big", "small"))
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["size"]),
        remainder=make_pipeline(SimpleImputer(), StandardScaler()),
    )
    estimator = make_pipeline(columns, LogisticRegression(max_iter=500))
    _register(client, "mixed", estimator, X, y)
    loaded = Registry(client).load_model("mixed")
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))


def test_tree_ensembles_round_trip_with_tree_trusted(client: Client, iris: tuple[Any, Any]) -> None:
    X, y = iris
    for name, estimator in {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0),
        "boosted": GradientBoostingClassifier(n_estimators=5, random_state=0),
    }.items():
        _register(client, name, estimator, X, y)
        with pytest.raises(InvalidInput, match=rf'pass trusted=\["{TREE}"\]'):
            Registry(client).load_model(name)
        loaded = Registry(client).load_model(name, trusted=[TREE])
        np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
