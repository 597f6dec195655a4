"""Checks applied at every boundary (Python API, HTTP, MCP) before anything is stored."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from chachaml.errors import InvalidInput
from chachaml.records.runs import OPS, RUN_ORDERS, RUN_STATUSES, Dataset, ParamValue

MAX_KEY = 250  # keys and names (experiments, runs)
MAX_VALUE = 6000  # a param's text value (MLflow's limit)
MAX_TAG_VALUE = 5000
MAX_TEXT = 100_000  # notes, descriptions, run errors, reasons
MAX_FILTER = 500  # a filter's text (experiment, user)
MAX_DATASET_NAME = 500  # a dataset's name or digest, one feature name
MAX_SOURCE = 2000  # where a dataset came from (a URI, a path, a query)
MAX_FEATURES = 100_000  # feature names of one dataset: a wide DataFrame's columns still fit
MAX_URL = 2000  # a webhook URL
MAX_LIMIT = 1_000_000  # an explicit listing limit (``None`` lists everything)
MAX_OFFSET = 2**62
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_SECOND = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last second a datetime holds
NUL_MESSAGE = "contains a NUL character (\\x00), which no store accepts"


def _control(value: str, what: str) -> None:
    """Refuse control characters, naming NUL when it is one (PostgreSQL cannot store it)."""
    if any(ord(ch) < 32 for ch in value):
        if "\x00" in value:
            raise InvalidInput(f"{what} {value[:40]!r} {NUL_MESSAGE}")
        raise InvalidInput(f"{what} {value[:40]!r} contains control characters")


def text(value: object, what: str, max_len: int = MAX_TEXT) -> str:
    """Free text (a note, a description, an error): a string without NUL, at most ``max_len``.

    NUL is refused on every backend alike: PostgreSQL cannot store it, and one rule at the
    boundary keeps SQLite from holding data that could never move to PostgreSQL.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise InvalidInput(f"{what} is longer than {max_len} characters ({len(value)})")
    if "\x00" in value:
        raise InvalidInput(f"{what} {NUL_MESSAGE}")
    return value


def optional_text(value: object, what: str, max_len: int = MAX_TEXT) -> str | None:
    """:func:`text`, or ``None``."""
    return None if value is None else text(value, what, max_len)


def filter_text(value: object, what: str) -> str | None:
    """A text filter (experiment, user): no NUL, so every backend answers it the same way."""
    return optional_text(value, what, MAX_FILTER)


def no_nul(value: Any, what: str) -> Any:
    """Refuse NUL anywhere in a JSON-like value (keys included); returns the value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(f"{what} {NUL_MESSAGE}")
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value


def dataset(value: Dataset) -> Dataset:
    """A dataset's text without NUL and within its sizes; ``extra`` at most 100,000 as JSON."""
    text(value.role, "dataset role", MAX_KEY)
    optional_text(value.name, "dataset name", MAX_DATASET_NAME)
    optional_text(value.source, "dataset source", MAX_SOURCE)
    optional_text(value.digest, "dataset digest", MAX_DATASET_NAME)
    if len(value.features) > MAX_FEATURES:
        raise InvalidInput(
            f"a dataset lists at most {MAX_FEATURES} features, got {len(value.features)}"
        )
    for feature in value.features:
        text(feature, "dataset feature name", MAX_DATASET_NAME)
    no_nul(value.extra, "dataset extra fields")
    size = len(json.dumps(value.extra, default=str))
    if size > MAX_TEXT:
        raise InvalidInput(
            f"dataset extra fields are longer than {MAX_TEXT} characters as JSON ({size})"
        )
    return value


def refused(exc: ValidationError) -> InvalidInput:
    """A model's refusal as the ``InvalidInput`` the Python API raises (first reason first)."""
    reasons = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        reasons.append(f"{where}: {message}" if where else message)
    return InvalidInput("; ".join(reasons) or str(exc))


def storable_error(value: object) -> str | None:
    """A run's error text as the Python client records it: NUL spelled out, cut to fit.

    Ending a run is a clean-up path that must not fail on the text it records (often an
    exception's message), so it is made storable rather than refused; only a non-string
    is refused, before the run is marked ended.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"error must be a string or None, got {type(value).__name__}")
    return storable(value)


def storable(value: str) -> str:
    r"""Text made storable on every backend: NUL spelled out ``\x00``, cut to 100,000."""
    return value.replace("\x00", "\\x00")[:MAX_TEXT]


def key(value: object, what: str = "key") -> str:
    """A metric, param or tag key: a non-empty string of printable characters."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_KEY:
        raise InvalidInput(f"{what} {value[:40]!r}... is longer than {MAX_KEY} characters")
    _control(value, what)
    return value


def name(value: object, what: str) -> str:
    """A name (experiment, run): a non-empty, stripped string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_KEY:
        raise InvalidInput(f"{what} is longer than {MAX_KEY} characters")
    _control(value, what)
    return value.strip()


def run_id(value: object) -> str:
    """A run id: a non-empty string of printable characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"run_id must be a non-empty string, got {value!r}")
    if len(value) > MAX_KEY:
        raise InvalidInput(f"run_id is longer than {MAX_KEY} characters")
    _control(value, "run_id")
    return value.strip()


def param_value(k: str, value: object) -> ParamValue:
    """Params hold scalars: str (at most 6000 characters, no NUL), int, float, bool or None."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE:
            raise InvalidInput(f"param {k!r} is longer than {MAX_VALUE} characters")
        if "\x00" in value:
            raise InvalidInput(f"param {k!r} {NUL_MESSAGE}")
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    # numpy scalars and similar expose .item(); anything else is described as text
    item = getattr(value, "item", None)
    if callable(item):
        scalar = item()
        if scalar is None or isinstance(scalar, str | bool | int | float):
            return param_value(k, scalar)
    return param_value(k, str(value))


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
        out[key(k, "tag key")] = text(
            v if isinstance(v, str) else str(v), f"tag {k!r}", MAX_TAG_VALUE
        )
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


MAX_STEP = 2**63 - 1  # the last step an int64 column holds


def overflow(k: str, last: int) -> InvalidInput:
    """The error for a default step after ``MAX_STEP``: the next step would not fit."""
    return InvalidInput(
        f"metric {k!r} is at step {last}, the last one stored steps can hold: its next step"
        " would overflow; log it with an explicit step"
    )


def next_step(k: str, last: int) -> int:
    """The default step after ``last``; ``InvalidInput`` when it would overflow int64."""
    if last >= MAX_STEP:
        raise overflow(k, last)
    return last + 1


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
    top = MAX_LIMIT if maximum is None else maximum
    if value > top:
        raise InvalidInput(f"limit must be at most {top}, got {value}")
    return value


def offset(value: object) -> int:
    """How many results to skip: an integer from 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"offset must be a non-negative integer, got {value!r}")
    if value > MAX_OFFSET:
        raise InvalidInput(f"offset must be at most {MAX_OFFSET}, got {value}")
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

    Naive datetimes and dates are taken as UTC; a date means its midnight. Times before
    1970 or after 9999 are refused: no run is that old, and stores keep epoch seconds.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return in_range(value if value.tzinfo else value.replace(tzinfo=UTC), what)
    if isinstance(value, date):
        return in_range(datetime(value.year, value.month, value.day, tzinfo=UTC), what)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{what} must be an ISO date or datetime such as 2026-01-31 or"
                f" 2026-01-31T12:00:00Z, got {value!r}"
            ) from None
        return in_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC), what)
    raise InvalidInput(f"{what} must be an ISO date or datetime string, got {value!r}")


def in_range(value: datetime, what: str) -> datetime:
    """An aware datetime from 1970 to the end of 9999 (UTC), the range stores hold."""
    try:
        seconds = value.timestamp()
    except (OverflowError, ValueError):
        seconds = -1.0
    if not 0 <= seconds <= LAST_SECOND:
        raise InvalidInput(
            f"{what} must be between 1970-01-01 and 9999-12-31 (UTC), got {value.isoformat()}"
        )
    return value


def json_mapping(value: object, what: str) -> dict[str, Any]:
    """A JSON object (a mapping with string keys)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{what} must be an object with string keys, got {value!r}")
    return dict(value)
