"""Metric points as the store ingests and returns them: chunks, step ranges, histories.

:class:`MetricSeries` is a history that stays columnar until its lists are asked for.

A million-point history read from the store is three arrays of 8-byte items; building the
three lists of a million Python objects (and validating them) cost 250 ms of a 285 ms read.
A series built with :meth:`MetricSeries.from_columns` keeps the arrays: ``to_numpy()`` and
``to_pandas()`` copy them at C speed, and the ``steps``, ``values`` and ``timestamps`` lists
are made the first time anything reads them (an attribute, ``==``, a dump to JSON, a pickle).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from chachaml.records import display as d
from chachaml.records.display import Html

if TYPE_CHECKING:
    from numpy.typing import NDArray

Columns = tuple["array[int]", "array[float]", "array[float]"]
_LISTS = frozenset({"steps", "values", "timestamps"})


class MetricSeries(BaseModel):
    """The full history of one metric of one run, ordered by step.

    A NaN value reads as ``None`` in ``values`` (JSON has no NaN); infinities are kept.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    key: str
    steps: list[int]
    values: list[float | None]
    timestamps: list[float]
    _columns: Columns | None = PrivateAttr(default=None)

    @classmethod
    def from_columns(
        cls, run_id: str, key: str, steps: array[int], values: array[float], times: array[float]
    ) -> MetricSeries:
        """A series over packed arrays, without a Python object per point until one is read.

        The arrays are the store's (valid by construction) and must not change afterwards.
        """
        series = cls.model_construct(set(cls.model_fields), run_id=run_id, key=key)
        series._columns = (steps, values, times)
        return series

    def _lists(self) -> None:
        """Make the lists not made yet from the columns (a no-op for a series built of lists).

        Each is made at most once; one given to ``model_copy(update=...)`` is kept.
        """
        columns = self._columns
        if columns is None or self.__dict__.keys() >= _LISTS:
            return
        steps, values, times = columns
        made: dict[str, object] = {}
        if "steps" not in self.__dict__:
            made["steps"] = steps.tolist()
        if "values" not in self.__dict__:
            listed = cast("list[float | None]", values.tolist())
            if math.isnan(sum(values)):  # a NaN (or inf and -inf) somewhere: C speed to find out
                listed = [None if math.isnan(v) else v for v in values]
            made["values"] = listed
        if "timestamps" not in self.__dict__:
            made["timestamps"] = times.tolist()
        self.__dict__.update(made)

    if not TYPE_CHECKING:  # mypy keeps checking attribute names; pydantic's own is kept below

        def __getattr__(self, name: str) -> Any:
            if name in _LISTS and self.__pydantic_private__.get("_columns") is not None:
                self._lists()
                return self.__dict__[name]
            return super().__getattr__(name)

    # no return annotation: pydantic then keeps the fields' schema (an annotated one replaces
    # the documented shape, OpenAPI's included, with the annotation's)
    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        self._lists()
        return handler(self)

    def __repr_args__(self) -> Any:
        self._lists()
        return super().__repr_args__()

    def __eq__(self, other: object) -> bool:
        self._lists()
        if isinstance(other, MetricSeries):
            other._lists()
            return (self.run_id, self.key, self.steps, self.values, self.timestamps) == (
                other.run_id, other.key, other.steps, other.values, other.timestamps
            )  # fmt: skip
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # lists inside: unhashable, as before

    def __iter__(self) -> Any:
        self._lists()
        return super().__iter__()

    def __getstate__(self) -> dict[Any, Any]:
        self._lists()
        return super().__getstate__()

    def to_numpy(self) -> dict[str, NDArray[Any]]:
        """The series as numpy arrays (numpy must be installed), each a copy of its own.

        ``step`` int64, ``value`` float64 (NaN where ``values`` reads ``None``), ``timestamp``
        float64 seconds since the epoch: ``pandas.DataFrame(series.to_numpy())`` works too.
        """
        import numpy as np

        columns = self._columns
        if columns is None:
            values = [math.nan if v is None else v for v in self.values]
            return {
                "step": np.array(self.steps, dtype=np.int64),
                "value": np.array(values, dtype=np.float64),
                "timestamp": np.array(self.timestamps, dtype=np.float64),
            }
        steps, vals, times = columns
        return {
            "step": np.frombuffer(steps, dtype=np.int64).copy(),
            "value": np.frombuffer(vals, dtype=np.float64).copy(),
            "timestamp": np.frombuffer(times, dtype=np.float64).copy(),
        }

    def to_pandas(self) -> Any:  # a pandas.DataFrame (pandas ships no type information)
        """The series as a DataFrame (pandas must be installed).

        Columns ``step``, ``value`` (NaN kept) and ``timestamp``, a UTC datetime.
        """
        import pandas as pd  # type: ignore[import-untyped]

        columns = self.to_numpy()
        frame = pd.DataFrame(columns)
        frame["timestamp"] = pd.to_datetime(columns["timestamp"], unit="s", utc=True)
        return frame

    def __repr__(self) -> str:
        count = len(self._columns[0]) if self._columns is not None else len(self.steps)
        last: float | None = None
        if count:
            last = self._columns[1][-1] if self._columns is not None else self.values[-1]
        shown = (d.num(last) or "None") if count else "-"
        return d.one_line(
            "MetricSeries",
            d.short_id(self.run_id),
            d.clip(self.key, 40),
            f"{count} points",
            f"last={shown}",
        )

    def _repr_html_(self) -> str:
        finite = [v for v in self.values if v is not None and math.isfinite(v)]
        title = Html(f"<strong>{d.esc(self.key)}</strong> of run {d.code(d.short_id(self.run_id))}")
        span = f"steps {self.steps[0]} to {self.steps[-1]}" if self.steps else "no points"
        stats = d.fields(
            [
                ("points", len(self.steps)),
                ("not drawn (NaN, inf)", (len(self.values) - len(finite)) or None),
                ("last", self.values[-1] if self.values else None),
                ("min", min(finite) if finite else None),
                ("max", max(finite) if finite else None),
                ("range", span),
            ]
        )
        chart = d.sparkline(self.steps, self.values, width=240, height=48)
        return d.card(title, Html(f"<div>{chart}</div>"), stats)


@dataclass(frozen=True, slots=True)
class MetricChunk:
    """A batch of points of one metric of one run, packed as the store ingests them.

    ``steps`` is little-endian int64, ``values`` and ``timestamps`` little-endian float64;
    the ``last_*``/``min``/``max`` fields summarise the chunk for the per-run metric summary.
    ``batch`` names the batch a chunk was sent in, so that a batch sent again (a retry after
    a lost reply or a crash) is not stored twice. ``min_step`` and ``in_order`` (whether the
    steps never decrease) complete the step span the store indexes (``last_step`` is the
    highest step); a chunk made without them has them worked out as it is stored. The store
    keeps the arrays compressed (:mod:`chachaml.store.compression`); this is their wire form.
    """

    run_id: str
    key: str
    count: int
    steps: bytes
    values: bytes
    timestamps: bytes
    last_value: float | None
    last_step: int
    last_time: float
    min_value: float | None
    max_value: float | None
    batch: str | None = None  # a retried batch with this id (per run) is stored only once
    min_step: int | None = None
    in_order: bool | None = None


@dataclass(frozen=True, slots=True)
class MetricPoints:
    """One metric's points in a step range as packed arrays, in step order.

    What a reader gets that must not build a Python object per point: a chart downsampling a
    million points works on these arrays at C speed. NaN and infinities are kept as logged.
    ``total``, ``first_step`` and ``last_step`` describe the whole series, whatever the range.
    """

    run_id: str
    key: str
    steps: array[int]
    values: array[float]
    timestamps: array[float]
    total: int
    first_step: int
    last_step: int


@dataclass(frozen=True, slots=True)
class MetricOutline(MetricPoints):
    """A step range of one metric as a chart needs it: its points, or enough of them.

    ``in_range`` counts the points in the range; the arrays hold them all (``positions`` is
    ``None``), or, when the range is large, of each block of a chunk with an outline that
    lies in the range only its first lowest, first highest and last point (and a few more,
    :func:`chachaml.store.outline.edge_positions`), and every other point. Then ``positions``
    gives each returned point's index among the range's points (increasing, below
    ``in_range``), so a chart can cut the range into buckets of equally many points and keep
    each bucket's extremes, and ``get_metric_history`` each step bucket's last point. Every
    point returned was logged; the range's lowest and highest finite values and all its
    NaN/infinite points are among them. ``outlined`` gives, flattened, each outlined chunk's
    first position, points and block size: a bucket edge moved to a block's edge there makes
    the bucket's extremes exact.
    """

    positions: array[int] | None
    in_range: int
    outlined: array[int] = field(default_factory=lambda: array("q"))
