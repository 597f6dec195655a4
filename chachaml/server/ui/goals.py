"""Which way is better for a metric, guessed from its name, and the best cells of a row.

``val_loss``, ``test/rmse``, ``epoch_time`` are better low; ``accuracy``, ``f1``, ``auc``
high. A guess is only a default: the pages let a person flip it per metric.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

Direction = Literal["max", "min"]
# Words that make a metric lower-is-better anywhere in its name ("trainloss", "val_error")...
LOWER_WORDS = ("loss", "error", "perplexity", "latency", "duration")
# ...and short ones that must be a whole word of it ("epoch_time", not "timestep")
LOWER_TOKENS = frozenset({"mse", "mae", "rmse", "err", "ppl", "time", "seconds", "wer", "cer"})


def better_direction(key: str) -> Direction:
    """``min`` when the metric's name says lower is better, ``max`` otherwise."""
    name = key.lower()
    if any(word in name for word in LOWER_WORDS):
        return "min"
    # camelCase to words too: "valMse" -> "val", "mse"
    tokens = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower())
    return "min" if any(t in LOWER_TOKENS for t in tokens) else "max"


def best_indices(values: Sequence[object], direction: Direction) -> list[int]:
    """Positions of the best finite value (ties all win); none when fewer than 2 differ."""
    finite = [
        (i, float(v))
        for i, v in enumerate(values)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if len({v for _, v in finite}) < 2:
        return []
    best = (max if direction == "max" else min)(v for _, v in finite)
    return [i for i, v in finite if v == best]
