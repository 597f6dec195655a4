"""How artifact values become bytes and come back.

Automatic choices are safe ones: ``bytes`` as they are, numpy arrays as ``.npy`` (never with
pickled objects), JSON-able values as JSON. Anything else needs an explicitly named serializer,
and ``pickle`` artifacts are only ever loaded with ``allow_pickle=True``. ``skops`` artifacts
(fitted scikit-learn estimators) load through
:func:`chachaml.store.artifacts.skops.loads_estimator` and its one trust rule, with ``trusted``
naming any type beyond it.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chachaml.errors import InvalidInput
from chachaml.records.runs import Table


@dataclass(frozen=True)
class Serializer:
    """A named way to turn values into bytes and back."""

    name: str
    content_type: str
    dump: Callable[[Any], bytes]
    load: Callable[[bytes], Any]
    trusted: bool = True  # False: loading may run code, so it needs allow_pickle=True


def _is_ndarray(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _dump_numpy(value: Any) -> bytes:
    import numpy as np

    if value.dtype == object:
        raise InvalidInput("numpy arrays of dtype object cannot be stored safely; convert them")
    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=False)
    return buf.getvalue()


def _load_numpy(data: bytes) -> Any:
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def _dump_json(value: Any) -> bytes:
    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"value is not JSON-serializable: {exc}") from None


def _dump_table(value: Any) -> bytes:
    table = value if isinstance(value, Table) else Table.model_validate(value)
    return table.model_dump_json().encode()


def _dump_text(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"the text serializer takes a str, got {type(value).__name__}")
    return value.encode()


def _dump_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInput(f"the bytes serializer takes bytes, got {type(value).__name__}")
    return bytes(value)


def _dump_skops(value: Any) -> bytes:
    try:
        import skops.io  # noqa: F401  (present, or the message below)
    except ImportError:
        raise InvalidInput(
            "the skops serializer needs scikit-learn and skops: pip install 'chachaml[sklearn]'"
        ) from None
    from chachaml.store.artifacts.skops import dumps_estimator

    return dumps_estimator(value)


def load_skops(data: bytes, trusted: Sequence[str] = ()) -> Any:
    """A fitted estimator from skops bytes, by :func:`.skops.loads_estimator`."""
    try:
        import skops.io  # noqa: F401  (present, or the message below)
    except ImportError:
        raise InvalidInput(
            "this artifact is a skops model; loading it needs scikit-learn and skops:"
            " pip install 'chachaml[sklearn]'"
        ) from None
    from chachaml.store.artifacts.skops import loads_estimator

    return loads_estimator(data, trusted)


SERIALIZERS: dict[str, Serializer] = {
    s.name: s
    for s in (
        Serializer("json", "application/json", _dump_json, json.loads),
        Serializer("bytes", "application/octet-stream", _dump_bytes, bytes),
        Serializer("text", "text/plain; charset=utf-8", _dump_text, lambda b: b.decode()),
        Serializer("numpy", "application/x-npy", _dump_numpy, _load_numpy),
        Serializer(
            "table", "application/vnd.chachaml.table+json", _dump_table, Table.model_validate_json
        ),
        Serializer("skops", "application/x-skops", _dump_skops, load_skops),
        Serializer("pickle", "application/x-pickle", pickle.dumps, pickle.loads, trusted=False),
    )
}


def serializer_for(value: object, name: str | None) -> Serializer:
    """The named serializer, or the safe automatic one for the value's type."""
    if name is not None:
        if name not in SERIALIZERS:
            raise InvalidInput(
                f"unknown serializer {name!r}; known: {', '.join(sorted(SERIALIZERS))}"
            )
        return SERIALIZERS[name]
    if isinstance(value, bytes | bytearray | memoryview):
        return SERIALIZERS["bytes"]
    if _is_ndarray(value):
        return SERIALIZERS["numpy"]
    if isinstance(value, Table):
        return SERIALIZERS["table"]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"cannot store a {type(value).__name__} automatically: only bytes, numpy arrays and"
            " JSON-able values are; name a serializer (e.g. serializer='pickle') to store it"
        ) from None
    return SERIALIZERS["json"]


def decode(
    data: bytes, serializer: str, allow_pickle: bool = False, trusted: Sequence[str] = ()
) -> Any:
    """Turn stored bytes back into a value; refuses untrusted formats unless allowed.

    ``trusted`` names types a skops model may hold beyond the implicit trust set.
    """
    found = SERIALIZERS.get(serializer)
    if found is None:  # a file logged with log_file, or an unknown format: hand back bytes
        return data
    if found.name == "skops":
        return load_skops(data, trusted)
    if not found.trusted and not allow_pickle:
        raise InvalidInput(
            f"this artifact was stored with the {serializer!r} serializer, which can run code"
            " when loaded; pass allow_pickle=True if you trust its source"
        )
    return found.load(data)
