"""Diabetes progression regression: train, register into production, load it back, predict.

Run it as ``python examples/sklearn_regression.py``; it logs to ``CHACHAML_STORE`` /
``CHACHAML_ARTIFACTS`` (``./chachaml.db`` and ``./chachaml-artifacts/`` by default).
"""

from __future__ import annotations

from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import chachaml as ml
from chachaml.client.integrations.sklearn import tracked_predict, train_and_evaluate

MODEL = "diabetes-ridge"


def main() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    result = train_and_evaluate(
        make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
        X_train,
        y_train,
        X_test,
        y_test,
        register_as=MODEL,
        stage="production",
        experiment="diabetes",
    )
    print(f"r2 {result.metrics['r2']:.3f}  mae {result.metrics['mae']:.1f}")
    print(f"rmse {result.metrics['rmse']:.1f}")

    model = ml.load_model(MODEL)
    with ml.run(experiment="diabetes", name="batch scoring"):
        predictions = tracked_predict(model, X_test.head(5))
    print("first predictions:", [round(float(p), 1) for p in predictions])
    version = ml.model_version(MODEL)
    print(f"version {version.version} ({version.stage}) from run {version.run_id}")
    ml.default_client().close()


if __name__ == "__main__":
    main()
