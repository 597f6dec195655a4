"""skops model files, and the rule for which types one may load.

Loading skops trusts types, never functions. Without ``trusted``, a model loads only if every
type in it is trusted by skops itself, is one of scikit-learn's estimator classes (from
``sklearn.utils.discovery.all_estimators``) or one of the few helper classes in
:data:`HELPER_TYPES`. Anything else, functions included (a name such as
``sklearn.utils._testing.check_output`` is ``subprocess.check_output``, which skops would call
with arguments from the file), must be named in ``trusted=[...]``. So must
``sklearn.tree._tree.Tree``, which every tree model holds: skops cannot check that a tree's
node indices are in range, and a crafted tree can crash the process at predict time. Every
path that decodes skops (``load_model``, ``load_artifact``, the MCP ``read_artifact`` tool)
goes through :func:`loads_estimator`. It lives beside the artifact serializers, below every
client of them; scikit-learn and skops are imported only when a skops file is read or written.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Sequence
from typing import Any

from chachaml.errors import InvalidInput


def _sio() -> Any:
    import skops.io as sio

    return sio


def dumps_estimator(estimator: Any) -> bytes:
    """An estimator as skops bytes; ``InvalidInput`` if skops cannot store it."""
    try:
        data: bytes = _sio().dumps(estimator)
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
        untrusted: list[str] = _sio().get_untrusted_types(data=data)
    except Exception as exc:  # not a zip, no schema, unknown node type ...
        raise InvalidInput(f"not a readable skops model file ({exc})") from None
    allowed = implicitly_trusted().union(trusted)
    refused = [t for t in untrusted if t not in allowed]
    if refused:
        raise InvalidInput(_refusal(refused))
    try:
        return _sio().loads(data, trusted=untrusted)
    except Exception as exc:
        raise InvalidInput(f"the skops model could not be loaded ({exc})") from exc
