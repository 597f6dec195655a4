"""Small encodings and lookups every repository shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TypeVar

from chachaml.errors import NotFound
from chachaml.records.runs import ParamValue, StopRequest
from chachaml.store.sql.database import Row, Tx

T = TypeVar("T")

ALL_ROWS = 2**62  # LIMIT for "no limit" that both dialects accept


def encode_param(value: ParamValue) -> str:
    """Params are stored as JSON so ``1``, ``1.0``, ``"1"`` and ``True`` stay distinct."""
    return json.dumps(value, sort_keys=True)


def param_text_encodings(text: str) -> list[str]:
    """The stored JSON of every param whose text (``str`` of its value) is ``text``.

    MLflow sends params as text; chachaml keeps natively logged ones typed. ``"0.1"`` is the
    text ``"0.1"`` and the number ``0.1``; ``"True"`` the text and ``True``; ``"None"`` also
    ``None``. A spelling Python would not print (``"1e-3"``, ``"01"``) is only text.
    """
    values: list[ParamValue] = [text]
    for parse in (int, float):
        try:
            number = parse(text)
        except ValueError:
            continue
        if str(number) == text:
            values.append(number)
    spelled = {"True": True, "False": False, "None": None}
    if text in spelled:
        values.append(spelled[text])
    return list(dict.fromkeys(encode_param(v) for v in values))


def decode_param(raw: str) -> ParamValue:
    """The inverse of :func:`encode_param`."""
    value: ParamValue = json.loads(raw)
    return value


def in_batches(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    """Split ids into batches small enough for an ``IN (...)`` list."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def marks(items: Sequence[object]) -> str:
    """``?, ?, ...``: one placeholder per item, for an ``IN (...)`` list."""
    return ",".join("?" * len(items))


async def require_run(db: Tx, run_id: str) -> str:
    """The stored status of a run; ``NotFound`` naming it if there is no such run."""
    found = await db.fetchall("SELECT status FROM runs WHERE id = ?", (run_id,))
    if not found:
        raise NotFound(f"run {run_id!r} not found")
    status: str = found[0]["status"]
    return status


STOP_SELECT = "SELECT id, stop_requested_at, stop_requested_by, stop_reason FROM runs"


def stop_from_row(row: Row) -> StopRequest:
    """A stop request from a row of ``STOP_SELECT`` (or one with its columns)."""
    return StopRequest(
        run_id=row["id"],
        user=row["stop_requested_by"],
        reason=row["stop_reason"],
        requested_at=row["stop_requested_at"],  # epoch seconds, validated into a datetime
    )
