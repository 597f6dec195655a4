"""The sklearn integration: tracked fit/predict/evaluate, safe files, the registry round trip.

A model loaded in a fresh process and the examples run: :mod:`tests.e2e.test_sklearn`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.cluster import KMeans
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from chachaml.client.client import Client
from chachaml.client.integrations.sklearn import (
    evaluate,
    tracked_fit,
    tracked_predict,
    train_and_evaluate,
)
from chachaml.client.registry import Registry
from chachaml.errors import InvalidInput
from chachaml.records.runs import Table
from chachaml.store.artifacts.skops import dumps_estimator, loads_estimator
from tests.support.skops_io import skops_io

# one worker imports skops (see tests.support.skops_io) for both modules that use it
pytestmark = pytest.mark.xdist_group("skops")


class Doubler(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A regressor defined outside scikit-learn: its type is not trusted by default."""

    def fit(self, X: Any, y: Any) -> Doubler:
        self.fitted_ = True
        return self

    def predict(self, X: Any) -> Any:
        return np.asarray(X)[:, 0] * 2


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, Any, Any]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    return X_train, X_test, y_train, y_test


def test_tracked_fit_logs_class_params_data_time_and_the_model(
    client: Client, iris: tuple[Any, Any, Any, Any]
) -> None:
    X_train, _, y_train, _ = iris
    with client.start_run("iris") as run:
        fitted = tracked_fit(
            LogisticRegression(C=0.5, max_iter=300), X_train, y_train, client=client
        )
    info = client.get_run(run.id)
    assert info.params["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert (info.params["C"], info.params["max_iter"]) == (0.5, 300)
    (dataset,) = info.datasets
    assert (dataset.role, dataset.n_rows, dataset.n_cols) == ("train", 105, 4)
    assert dataset.features[0] == "sepal length (cm)"
    assert info.metrics["fit_time_seconds"] is not None and info.metrics["fit_time_seconds"] > 0
    (artifact,) = info.artifacts
    assert (artifact.name, artifact.serializer) == ("model", "skops")
    assert fitted.coef_.shape == (3, 4)


def test_tracked_fit_without_a_run_starts_one(client: Client) -> None:
    tracked_fit(LinearRegression(), [[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0], client=client)
    (run,) = client.runs()
    assert (run.name, run.status) == ("fit LinearRegression", "completed")


def test_tracked_fit_logs_nested_estimators_by_class_name(client: Client) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), LinearRegression())
    with client.start_run("exp") as run:
        tracked_fit(pipeline, [[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0], client=client)
    params = client.get_run(run.id).params
    assert params["linearregression"] == "LinearRegression"
    assert isinstance(params["steps"], str) and len(params["steps"]) <= 250


def test_tracked_predict_logs_time_and_count(
    client: Client, iris: tuple[Any, Any, Any, Any]
) -> None:
    X_train, X_test, y_train, _ = iris
    model = DecisionTreeClassifier(random_state=0).fit(X_train, y_train)
    with client.start_run("iris") as run:
        predictions = tracked_predict(model, X_test, client=client)
        tracked_predict(model, X_test.head(3), client=client)
    assert len(predictions) == 45
    info = client.get_run(run.id)
    assert info.metrics["predict_count"] == 3
    assert client.metric_history(run.id, "predict_count").values == [45, 3]
    assert info.metrics["predict_time_seconds"] is not None


def test_evaluate_a_multiclass_classifier(client: Client, iris: tuple[Any, Any, Any, Any]) -> None:
    X_train, X_test, y_train, y_test = iris
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    with client.start_run("iris") as run:
        metrics = evaluate(model, X_test, y_test, prefix="test_", client=client)
    assert set(metrics) == {
        "test_accuracy",
        "test_precision",
        "test_recall",
        "test_f1",
        "test_roc_auc",
    }
    assert all(0.9 <= v <= 1.0 for v in metrics.values())
    assert client.get_run(run.id).metrics == pytest.approx(metrics)
    table = client.load_artifact(run.id, "test_confusion_matrix")
    assert isinstance(table, Table)
    assert table.headers == ["true \\ predicted", "0", "1", "2"]
    assert sum(sum(row[1:]) for row in table.rows) == 45


def test_evaluate_a_binary_classifier_with_string_labels(client: Client) -> None:
    X = [[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]
    y = ["no", "no", "no", "yes", "yes", "yes"]
    model = LinearSVC().fit(X, y)  # decision_function only: roc_auc from it
    with client.start_run("exp"):
        metrics = evaluate(model, X, y, client=client)
    assert metrics == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0}


def test_roc_auc_is_left_out_where_undefined(client: Client) -> None:
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    with client.start_run("exp"):
        metrics = evaluate(model, [[0.0], [0.5]], [0, 0], client=client)
    assert "roc_auc" not in metrics
    assert metrics["accuracy"] == 1.0


def test_evaluate_a_regressor(client: Client) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    with client.start_run("diabetes") as run:
        metrics = evaluate(model, X, y, client=client)
    assert set(metrics) == {"r2", "mae", "rmse"}
    assert 0.4 < metrics["r2"] < 0.6 and metrics["mae"] < metrics["rmse"]
    assert client.list_artifacts(run.id) == []


def test_evaluate_refuses_estimators_that_are_neither(client: Client) -> None:
    model = KMeans(n_clusters=2, n_init=1, random_state=0).fit([[0.0], [1.0], [5.0]])
    with client.start_run("exp"), pytest.raises(InvalidInput, match="classifier or a regressor"):
        evaluate(model, [[0.0]], [0], client=client)


def test_train_and_evaluate_registers_and_promotes(
    client: Client, iris: tuple[Any, Any, Any, Any]
) -> None:
    X_train, X_test, y_train, y_test = iris
    registry = Registry(client)
    first = train_and_evaluate(
        LogisticRegression(max_iter=500),
        X_train,
        y_train,
        X_test,
        y_test,
        register_as="iris",
        stage="production",
        client=client,
    )
    second = train_and_evaluate(
        DecisionTreeClassifier(random_state=0),
        X_train,
        y_train,
        X_test,
        y_test,
        register_as="iris",
        stage="production",
        experiment="iris",
        client=client,
    )
    assert first.version is not None and second.version is not None
    assert (first.version.version, second.version.version) == (1, 2)
    assert second.version.metrics["accuracy"] == second.metrics["accuracy"]
    stages = {v.version: v.stage for v in registry.model_versions("iris")}
    assert stages == {1: "archived", 2: "production"}
    loaded = registry.load_model("iris", trusted=["sklearn.tree._tree.Tree"])
    assert type(loaded) is DecisionTreeClassifier
    np.testing.assert_array_equal(loaded.predict(X_test), second.estimator.predict(X_test))
    run = client.get_run(second.run_id)
    assert (run.experiment, run.name, run.status) == (
        "iris",
        "train DecisionTreeClassifier",
        "completed",
    )
    assert {d.role for d in run.datasets} == {"train", "eval"}


def test_train_and_evaluate_without_registering(client: Client) -> None:
    X, y = load_diabetes(return_X_y=True)
    result = train_and_evaluate(
        LinearRegression(), X[:300], y[:300], X[300:], y[300:], client=client
    )
    assert result.version is None
    assert Registry(client).models() == []
    assert client.get_run(result.run_id).metrics["r2"] == pytest.approx(result.metrics["r2"])


@pytest.mark.parametrize(
    ("register_as", "stage", "message"),
    [
        (None, "production", "stage is only used with register_as"),
        ("iris", "live", "stage must be one of none, staging, production, archived"),
        ("", None, "model_name must be a non-empty string"),
    ],
)
def test_train_and_evaluate_checks_arguments_before_training(
    client: Client, register_as: str | None, stage: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        train_and_evaluate(
            LinearRegression(), [[0.0]], [0.0], [[0.0]], [0.0], register_as, stage, client=client
        )
    assert client.runs() == []


def test_untrusted_types_in_a_model_file_are_refused_unless_named() -> None:
    data = skops_io().dumps(Doubler().fit([[1.0]], [2.0]))
    (untrusted,) = skops_io().get_untrusted_types(data=data)
    with pytest.raises(InvalidInput, match=f"not trusted: {untrusted}; pass trusted="):
        loads_estimator(data)
    with pytest.raises(InvalidInput, match="a list of type names"):
        loads_estimator(data, untrusted)
    assert loads_estimator(data, [untrusted]).predict([[3.0]]).tolist() == [6.0]


def test_scikit_learn_estimators_are_trusted_and_trees_need_naming() -> None:
    linear = dumps_estimator(LinearSVC().fit([[0.0], [1.0]], [0, 1]))
    assert loads_estimator(linear).predict([[1.0]]).tolist() == [1]
    model = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0]], [0, 1])
    data = dumps_estimator(model)
    assert skops_io().get_untrusted_types(data=data) == ["sklearn.tree._tree.Tree"]
    with pytest.raises(InvalidInput, match=r'pass trusted=\["sklearn.tree._tree.Tree"\]'):
        loads_estimator(data)
    tree = loads_estimator(data, ["sklearn.tree._tree.Tree"])
    assert tree.predict([[1.0]]).tolist() == [1]


def test_a_custom_estimator_registers_and_loads_with_trust(client: Client) -> None:
    registry = Registry(client)
    train_and_evaluate(
        Doubler(),
        [[1.0]],
        [2.0],
        [[2.0], [3.0]],
        [4.0, 6.0],
        "doubler",
        "production",
        client=client,
    )
    with pytest.raises(InvalidInput, match="not trusted"):
        registry.load_model("doubler")
    trusted = [f"{Doubler.__module__}.Doubler"]
    assert registry.load_model("doubler", trusted=trusted).predict([[5.0]]).tolist() == [10.0]


def test_pickled_estimators_need_allow_pickle(client: Client) -> None:
    with client.start_run("exp"):
        tracked_fit(
            LinearRegression(), [[0.0], [1.0]], [0.0, 2.0], serializer="pickle", client=client
        )
        Registry(client).register_model("lin", stage="production")
    with pytest.raises(InvalidInput, match="allow_pickle=True"):
        Registry(client).load_model("lin")
    model = Registry(client).load_model("lin", allow_pickle=True)
    assert model.predict([[2.0]]).tolist() == pytest.approx([4.0])
