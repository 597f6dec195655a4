"""scikit-learn, tracked: fit, predict, evaluate and register estimators in one call or a few.

Install with ``pip install 'chachaml[sklearn]'``. Each function logs to the current run of the
client (the default client unless ``client=`` is given); without a current run it starts one
for the call. Fitted estimators are stored as the ``model`` artifact in skops format.

Loading follows :mod:`chachaml.store.artifacts.skops`' trust rule: types, never functions; tree
models need ``trusted=["sklearn.tree._tree.Tree"]``. ``serializer="pickle"`` is there for
estimators skops cannot store; such models then only load with ``allow_pickle=True``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from chachaml.errors import InvalidInput, MissingExtra

try:  # one line naming the extra instead of a ModuleNotFoundError traceback
    import numpy as np
    from sklearn.base import is_classifier, is_regressor
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        mean_absolute_error,
        precision_score,
        r2_score,
        recall_score,
        roc_auc_score,
        root_mean_squared_error,
    )
except ImportError as exc:
    _missing = (exc.name or "scikit-learn").split(".")[0]
    raise MissingExtra(
        f"chachaml's scikit-learn integration needs {_missing}, which is not installed:"
        " pip install 'chachaml[sklearn]'"
    ) from None

from chachaml.client.client import Client
from chachaml.client.default import resolve_client
from chachaml.client.registry import Registry
from chachaml.client.run import ActiveRun
from chachaml.records import validation
from chachaml.records.registry import ModelVersion
from chachaml.records.runs import ParamValue
from chachaml.store.artifacts.skops import (
    dumps_estimator,
)
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools.registry import check_model_name, check_stage

SKOPS = "skops"
SKOPS_CONTENT_TYPE = "application/x-skops"
MAX_PARAM_TEXT = 250


@contextlib.contextmanager
def _run(client: Client, name: str) -> Iterator[ActiveRun]:
    """The current run, or a new one for the duration of the block."""
    active = client.active_run()
    if active is not None:
        yield active
        return
    with client.start_run(name=name) as run:
        yield run


def _class_name(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}"


def _param(value: Any) -> ParamValue:
    if isinstance(value, type):  # e.g. OneHotEncoder(dtype=np.float64)
        return value.__name__
    if value is None or isinstance(value, str | bool | int | float):
        return value[:MAX_PARAM_TEXT] if isinstance(value, str) else value
    if hasattr(value, "get_params"):
        return type(value).__name__
    scalar = validation.param_value("", value)
    return scalar[:MAX_PARAM_TEXT] if isinstance(scalar, str) else scalar


def estimator_params(estimator: Any) -> dict[str, ParamValue]:
    """``get_params()`` as loggable params: nested estimators by class name, long text cut."""
    if not hasattr(estimator, "get_params"):
        raise InvalidInput(f"expected a scikit-learn estimator, got {type(estimator).__name__}")
    params = {k: _param(v) for k, v in estimator.get_params().items()}
    return {"estimator_class": _class_name(estimator), **params}


def log_estimator(
    estimator: Any,
    artifact: str = "model",
    *,
    serializer: Literal["skops", "pickle"] = "skops",
    client: Client | None = None,
) -> None:
    """Store a fitted estimator as an artifact of the current run."""
    c = resolve_client(client)
    run = c.active_run()
    if run is None:
        raise InvalidInput("log_estimator needs an active run")
    if serializer == "pickle":
        run.log_artifact(artifact, estimator, serializer="pickle")
        return
    if serializer != SKOPS:
        raise InvalidInput(f"serializer must be 'skops' or 'pickle', got {serializer!r}")
    data = dumps_estimator(estimator)
    rt = c.runtime
    rt.call(
        partial(
            artifact_ops.put_bytes,
            rt.store,
            rt.artifacts,
            run.id,
            artifact,
            data,
            content_type=SKOPS_CONTENT_TYPE,
            serializer=SKOPS,
        )
    )


def tracked_fit(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    artifact: str = "model",
    serializer: Literal["skops", "pickle"] = "skops",
    client: Client | None = None,
    **fit_kwargs: Any,
) -> Any:
    """Fit and log: the estimator's class and params, training data shape, fit time, model.

    Params are immutable per run, so fit one estimator per run. Returns the estimator.
    """
    c = resolve_client(client)
    params = estimator_params(estimator)
    with _run(c, f"fit {type(estimator).__name__}") as run:
        run.log_params(params)
        run.log_dataset("train", data=X)
        started = time.perf_counter()
        estimator.fit(X, y, **fit_kwargs)
        run.log_metric("fit_time_seconds", time.perf_counter() - started)
        log_estimator(estimator, artifact, serializer=serializer, client=c)
    return estimator


def tracked_predict(estimator: Any, X: Any, *, client: Client | None = None) -> Any:
    """Predict and log the prediction time and how many predictions were made."""
    c = resolve_client(client)
    with _run(c, f"predict {type(estimator).__name__}") as run:
        started = time.perf_counter()
        predictions = estimator.predict(X)
        run.log_metric("predict_time_seconds", time.perf_counter() - started)
        run.log_metric("predict_count", len(predictions))
    return predictions


def _labels(estimator: Any, y: Any, predicted: Any) -> Any:
    """Every label: the model's classes and any other seen in the truth or the predictions."""
    known = [np.asarray(y), np.asarray(predicted)]
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        known.append(np.asarray(classes))
    return np.unique(np.concatenate(known))


def _classification(
    estimator: Any, X: Any, y: Any, predicted: Any, labels: Any
) -> dict[str, float]:
    truth = np.asarray(y)
    binary = len(labels) <= 2
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": labels[-1]} if binary else {"average": "macro"}
    )
    metrics = {
        "accuracy": accuracy_score(truth, predicted),
        "precision": precision_score(truth, predicted, zero_division=0, **averaging),
        "recall": recall_score(truth, predicted, zero_division=0, **averaging),
        "f1": f1_score(truth, predicted, zero_division=0, **averaging),
    }
    auc = _roc_auc(estimator, X, truth)
    if auc is not None:
        metrics["roc_auc"] = auc
    return {k: float(val) for k, val in metrics.items()}


def _roc_auc(estimator: Any, X: Any, truth: Any) -> float | None:
    """ROC AUC where it is defined: scores available and every class of the model present."""
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) < 2 or set(np.unique(truth)) != set(classes):
        return None
    if hasattr(estimator, "predict_proba"):
        scores = estimator.predict_proba(X)
        if len(classes) == 2:
            return float(roc_auc_score(truth, scores[:, 1]))
        return float(roc_auc_score(truth, scores, multi_class="ovr", labels=classes))
    if len(classes) == 2 and hasattr(estimator, "decision_function"):
        return float(roc_auc_score(truth, estimator.decision_function(X)))
    return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def evaluate(
    estimator: Any, X: Any, y: Any, *, prefix: str = "", client: Client | None = None
) -> dict[str, float]:
    """Log the metrics that fit the task and return them.

    Classifiers: accuracy, precision, recall, f1 (binary for two labels, else macro-averaged),
    roc_auc where defined, and the confusion matrix as the table ``{prefix}confusion_matrix``.
    Regressors: r2, mae, rmse. Metric names start with ``prefix``.
    """
    c = resolve_client(client)
    if not isinstance(prefix, str):
        raise InvalidInput(f"prefix must be a string, got {prefix!r}")
    with _run(c, f"evaluate {type(estimator).__name__}") as run:
        run.log_dataset(f"{prefix}eval" if prefix else "eval", data=X)
        predicted = estimator.predict(X)
        if is_classifier(estimator):
            labels = _labels(estimator, y, predicted)
            metrics = _classification(estimator, X, y, predicted, labels)
            matrix = confusion_matrix(y, predicted, labels=labels)
            run.log_table(
                f"{prefix}confusion_matrix",
                ["true \\ predicted", *(str(_plain(label)) for label in labels)],
                [
                    [str(_plain(label)), *(int(n) for n in row)]
                    for label, row in zip(labels, matrix, strict=True)
                ],
            )
        elif is_regressor(estimator):
            metrics = {
                "r2": float(r2_score(y, predicted)),
                "mae": float(mean_absolute_error(y, predicted)),
                "rmse": float(root_mean_squared_error(y, predicted)),
            }
        else:
            raise InvalidInput(
                f"evaluate needs a classifier or a regressor, got {type(estimator).__name__}"
            )
        named = {f"{prefix}{k}": val for k, val in metrics.items()}
        run.log_metrics(named)
    return named


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_and_evaluate` did: its run, the fitted estimator, metrics, version."""

    run_id: str
    estimator: Any
    metrics: dict[str, float]
    version: ModelVersion | None


def train_and_evaluate(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    register_as: str | None = None,
    stage: str | None = None,
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    client: Client | None = None,
) -> TrainResult:
    """Fit on the training set and evaluate on the test set in a new run.

    With ``register_as``, the fitted model becomes the next version of that model, in
    ``stage`` if given (production archives the previous production version).
    """
    if stage is not None and register_as is None:
        raise InvalidInput("stage is only used with register_as=<model name>")
    name = None if register_as is None else check_model_name(register_as)
    target_stage = check_stage(stage if stage is not None else "none")
    c = resolve_client(client)
    with c.start_run(experiment, run_name or f"train {type(estimator).__name__}") as run:
        tracked_fit(estimator, X_train, y_train, client=c)
        metrics = evaluate(estimator, X_test, y_test, client=c)
        version = None
        if name is not None:
            version = Registry(c).register_model(name, "model", run.id, target_stage)
    return TrainResult(run_id=run.id, estimator=estimator, metrics=metrics, version=version)
