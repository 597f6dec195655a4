"""Checks applied at every boundary (Python API, HTTP, MCP) before anything is stored."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from chachaml.errors import InvalidInput
from chachaml.models import OPS, RUN_ORDERS, RUN_STATUSES, ParamValue

MAX_KEY = 250
MAX_VALUE = 6000


def key(value: object, what: str = "key") -> str:
    """A metric, param or tag key: a non-empty string of printable characters."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_KEY:
        raise InvalidInput(f"{what} {value[:40]!r}... is longer than {MAX_KEY} characters")
    if any(ord(ch) < 32 for ch in value):
        raise InvalidInput(f"{what} {value!r} contains control characters")
    return value


def name(value: object, what: str) -> str:
    """A name (experiment, run): a non-empty, stripped string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_KEY:
        raise InvalidInput(f"{what} is longer than {MAX_KEY} characters")
    if any(ord(ch) < 32 for ch in value):
        raise InvalidInput(f"{what} {value!r} contains control characters")
    return value.strip()


def run_id(value: object) -> str:
    """A run id: a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"run_id must be a non-empty string, got {value!r}")
    return value.strip()


def param_value(k: str, value: object) -> ParamValue:
    """Params hold scalars: str, int, float (finite or not), bool or None."""
    if value is None or isinstance(value, str | bool | int | float):
        if isinstance(value, str) and len(value) > MAX_VALUE:
            raise InvalidInput(f"param {k!r} is longer than {MAX_VALUE} characters")
        return value
    # numpy scalars and similar expose .item(); anything else is described as text
    item = getattr(value, "item", None)
    if callable(item):
        scalar = item()
        if scalar is None or isinstance(scalar, str | bool | int | float):
            return scalar
    return str(value)


def params(values: Mapping[str, object]) -> dict[str, ParamValue]:
    """Validate a params mapping."""
    if not isinstance(values, Mapping):
        raise InvalidInput(f"params must be a mapping of key to value, got {type(values).__name__}")
    return {key(k, "param key"): param_value(k, v) for k, v in values.items()}


def tags(values: Mapping[str, object]) -> dict[str, str]:
    """Tags are string to string; other values are converted with ``str``."""
    if not isinstance(values, Mapping):
        raise InvalidInput(f"tags must be a mapping of key to value, got {type(values).__name__}")
    out: dict[str, str] = {}
    for k, v in values.items():
        text = v if isinstance(v, str) else str(v)
        if len(text) > MAX_VALUE:
            raise InvalidInput(f"tag {k!r} is longer than {MAX_VALUE} characters")
        out[key(k, "tag key")] = text
    return out


def metric_value(k: str, value: object) -> float:
    """A metric value: anything ``float()`` accepts except bool and str. NaN/inf are kept."""
    if isinstance(value, bool | str | bytes) or value is None:
        raise InvalidInput(f"metric {k!r} must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"metric {k!r} must be a number, got {value!r}") from None


def step(value: object) -> int:
    """A step: a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        item = getattr(value, "__index__", None)
        if item is None:
            raise InvalidInput(f"step must be a non-negative integer, got {value!r}")
        value = item()
    assert isinstance(value, int)
    if value < 0 or value >= 2**63:
        raise InvalidInput(f"step must be a non-negative integer, got {value!r}")
    return value


def status(value: object) -> str | None:
    """A run status filter."""
    if value is None:
        return None
    if value not in RUN_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(RUN_STATUSES)}; got {value!r}")
    return str(value)


def op(value: object) -> str:
    """A comparison operator."""
    if value not in OPS:
        raise InvalidInput(f"op must be one of {' '.join(OPS)}; got {value!r}")
    return str(value)


def run_order(value: object) -> str:
    """A run field to sort listings by."""
    if value not in RUN_ORDERS:
        raise InvalidInput(f"order_by must be one of {', '.join(RUN_ORDERS)}; got {value!r}")
    return str(value)


def direction(value: object) -> str:
    """``max`` or ``min``."""
    if value not in ("max", "min"):
        raise InvalidInput(f"direction must be 'max' or 'min', got {value!r}")
    return str(value)


def limit(value: object, default: int | None, maximum: int | None = None) -> int | None:
    """A positive result limit (``None`` means no limit where allowed)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"limit must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"limit must be at most {maximum}, got {value}")
    return value


def finite(value: object, what: str) -> float:
    """A finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{what} must be finite, got {value!r}")
    return float(value)


def when(value: object, what: str) -> datetime | None:
    """An ISO date or datetime (string), a ``date``/``datetime``, or ``None``.

    Naive datetimes and dates are taken as UTC; a date means its midnight.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{what} must be an ISO date or datetime such as 2026-01-31 or"
                f" 2026-01-31T12:00:00Z, got {value!r}"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidInput(f"{what} must be an ISO date or datetime string, got {value!r}")


def json_mapping(value: object, what: str) -> dict[str, Any]:
    """A JSON object (a mapping with string keys)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{what} must be an object with string keys, got {value!r}")
    return dict(value)
