"""Iris classification, end to end: train two models, register both, promote, load, compare.

Run it as ``python examples/sklearn_iris.py``; it logs to ``CHACHAML_STORE`` /
``CHACHAML_ARTIFACTS`` (``./chachaml.db`` and ``./chachaml-artifacts/`` by default).
"""

from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import chachaml as ml
from chachaml.client.integrations.sklearn import train_and_evaluate

MODEL = "iris-classifier"


def main() -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    baseline = train_and_evaluate(
        LogisticRegression(max_iter=500),
        X_train,
        y_train,
        X_test,
        y_test,
        register_as=MODEL,
        stage="production",
        experiment="iris",
    )
    forest = train_and_evaluate(
        RandomForestClassifier(n_estimators=50, random_state=0),
        X_train,
        y_train,
        X_test,
        y_test,
        register_as=MODEL,
        stage="staging",
        experiment="iris",
    )
    assert baseline.version is not None and forest.version is not None
    ml.set_alias(MODEL, "challenger", forest.version.version)
    ml.set_model_note(MODEL, "# Iris classifier\nSpecies from sepal and petal sizes.")

    production = ml.load_model(MODEL)
    # a forest holds trees, which load only when named as trusted (chachaml.store.artifacts.skops)
    challenger = ml.load_model(MODEL, alias="challenger", trusted=["sklearn.tree._tree.Tree"])
    agree = (production.predict(X_test) == challenger.predict(X_test)).mean()
    print(f"baseline accuracy {baseline.metrics['accuracy']:.3f}")
    print(f"forest accuracy {forest.metrics['accuracy']:.3f}")
    print(f"production and challenger agree on {agree:.0%} of the test set")

    diff = ml.diff_versions(MODEL, baseline.version.version, forest.version.version)
    print(f"params changed: {', '.join(diff.params)}")
    for key, delta in diff.metrics.items():
        print(f"{key}: {delta.v1} -> {delta.v2}")
    ml.default_client().close()


if __name__ == "__main__":
    main()
