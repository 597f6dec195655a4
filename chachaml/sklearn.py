"""scikit-learn, tracked: fit, predict, evaluate and register estimators in one call or a few.

Install with ``pip install 'chachaml[sklearn]'``. Each function logs to the current run of the
client (the default client unless ``client=`` is given); without a current run it starts one
for the call. Fitted estimators are stored as the ``model`` artifact in skops format.

Loading skops trusts types, never functions. Without ``trusted``, a model loads only if every
type in it is trusted by skops itself, is one of scikit-learn's estimator classes (from
``sklearn.utils.discovery.all_estimators``) or one of the few helper classes in
:data:`HELPER_TYPES`. Anything else, functions included (a name such as
``sklearn.utils._testing.check_output`` is ``subprocess.check_output``, which skops would call
with arguments from the file), must be named in ``trusted=[...]``. So must
``sklearn.tree._tree.Tree``, which every tree model holds: skops cannot check that a tree's
node indices are in range, and a crafted tree can crash the process at predict time, so
loading a tree you did not make yourself is a decision to state:
``load_model(name, trusted=["sklearn.tree._tree.Tree"])``. Every path that decodes skops
(``load_model``, ``load_artifact``, the MCP ``read_artifact`` tool) goes through
:func:`loads_estimator`. ``serializer="pickle"`` is there for estimators skops cannot store;
such models then only load with ``allow_pickle=True``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import skops.io as sio
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

from chachaml import validation
from chachaml.bound import resolve_client
from chachaml.errors import InvalidInput
from chachaml.records.registry import ModelVersion
from chachaml.records.runs import ParamValue
from chachaml.registry import Registry
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools.registry import check_model_name, check_stage
from chachaml.tracking.active_run import ActiveRun
from chachaml.tracking.client import Client

SKOPS = "skops"
SKOPS_CONTENT_TYPE = "application/x-skops"
MAX_PARAM_TEXT = 250


def dumps_estimator(estimator: Any) -> bytes:
    """An estimator as skops bytes; ``InvalidInput`` if skops cannot store it."""
    try:
        data: bytes = sio.dumps(estimator)
    except Exception as exc:
        raise InvalidInput(
            f"skops cannot store a {type(estimator).__name__} ({exc}); pass serializer='pickle'"
            " to store it as a pickle (loading it will then need allow_pickle=True)"
        ) from exc
    return data


TREE = "sklearn.tree._tree.Tree"
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
#: Never trusted implicitly: skops leaves them untrusted because it cannot validate their
#: node arrays, which scikit-learn indexes without bounds checks.
NEVER_IMPLICIT = frozenset({TREE, TREE_PREDICTOR})
_KERNELS = (
    "ConstantKernel",
    "DotProduct",
    "ExpSineSquared",
    "Exponentiation",
    "Matern",
    "PairwiseKernel",
    "Product",
    "RBF",
    "RationalQuadratic",
    "Sum",
    "WhiteKernel",
)
#: Classes (never functions) that fitted estimators hold and skops does not trust by itself.
#: Each is a plain Python class whose state is its attributes, or a numpy dtype rebuilt from
#: a stored array; a name that does not resolve to a class in the installed versions is left
#: out of the trust set.
HELPER_TYPES: tuple[str, ...] = (
    "numpy.dtype",  # SimpleImputer, KBinsDiscretizer
    "sklearn.utils._bunch.Bunch",  # VotingClassifier, StackingClassifier
    "sklearn.calibration._CalibratedClassifier",  # CalibratedClassifierCV
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.KFold",  # search CVs
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # MLP*
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn._loss.loss.HalfTweedieLoss",  # TweedieRegressor
    "sklearn._loss.loss.HalfTweedieLossIdentity",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    *(f"sklearn.gaussian_process.kernels.{k}" for k in _KERNELS),
)


def _is_class(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type)


@functools.cache
def implicitly_trusted() -> frozenset[str]:
    """Type names trusted without ``trusted=`` beyond skops' defaults: classes only.

    scikit-learn's estimator classes, named as skops names them (defining module and class
    name), plus the :data:`HELPER_TYPES` that resolve to classes; never ``Tree``.
    """
    from sklearn.utils.discovery import all_estimators

    names = {
        f"{cls.__module__}.{cls.__name__}"
        for _, cls in all_estimators()
        if isinstance(cls, type) and cls.__module__.startswith("sklearn.")
    }
    names.update(h for h in HELPER_TYPES if _is_class(h))
    return frozenset(names - NEVER_IMPLICIT)


def _refusal(refused: list[str]) -> str:
    why = (
        " (skops cannot check a tree's node indices, so a crafted tree can crash the process"
        " at predict time: trust trees from sources you trust)"
        if NEVER_IMPLICIT.intersection(refused)
        else ""
    )
    return (
        f"this model contains types that are not trusted: {', '.join(refused)}; pass"
        f" trusted={json.dumps(refused)} if you trust the model's source{why}"
    )


def loads_estimator(data: bytes, trusted: Sequence[str] = ()) -> Any:
    """Load skops bytes, refusing any type that is neither implicitly trusted nor ``trusted``.

    See the module docs for the rule; functions are only ever loaded when named.
    """
    if isinstance(trusted, str) or not all(isinstance(t, str) for t in trusted):
        raise InvalidInput("trusted must be a list of type names, not a single string")
    try:
        untrusted: list[str] = sio.get_untrusted_types(data=data)
    except Exception as exc:  # not a zip, no schema, unknown node type ...
        raise InvalidInput(f"not a readable skops model file ({exc})") from None
    allowed = implicitly_trusted().union(trusted)
    refused = [t for t in untrusted if t not in allowed]
    if refused:
        raise InvalidInput(_refusal(refused))
    try:
        return sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise InvalidInput(f"the skops model could not be loaded ({exc})") from exc


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
