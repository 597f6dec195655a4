"""``skops.io`` on first use, for the tests that build or inspect skops files themselves."""

from __future__ import annotations

from typing import Any


def skops_io() -> Any:
    """``skops.io``: importing it walks every estimator module of scikit-learn (and PyTorch's,
    when installed), ~1.3 s that collecting the suite, in every worker, need not pay."""
    import skops.io

    return skops.io
