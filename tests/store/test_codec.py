"""Packed chunks: their step span, and joining stored chunks into one step range in order."""

from __future__ import annotations

import math
from array import array

from chachaml.records.runs import MetricPoints
from chachaml.store.codec import (
    StoredChunk,
    chunk_from_columns,
    join_chunks,
    series_of,
    step_span,
)


def packed(steps: list[int], t0: float = 0.0) -> StoredChunk:
    """A stored chunk whose values are its steps plus a half and times ``t0`` plus the index."""
    low, high, in_order = step_span(array("q", steps).tobytes())
    values = array("d", [s + 0.5 for s in steps]).tobytes()
    times = array("d", [t0 + i for i in range(len(steps))]).tobytes()
    return StoredChunk(array("q", steps).tobytes(), values, times, low, high, in_order)


def test_a_step_span_is_the_lowest_and_highest_step_and_whether_they_are_in_order() -> None:
    assert step_span(array("q", [3, 3, 8]).tobytes()) == (3, 8, True)
    assert step_span(array("q", [7, 2, 9]).tobytes()) == (2, 9, False)
    assert step_span(array("q", [-5]).tobytes()) == (-5, -5, True)


def test_a_packed_chunk_carries_its_step_span_and_latest_point() -> None:
    chunk = chunk_from_columns("r", "k", [4, 2, 9, 9, 3], [1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5)
    assert (chunk.min_step, chunk.last_step, chunk.in_order) == (2, 9, False)
    assert chunk.last_value == 4.0, "the last point at the highest step"
    chunk = chunk_from_columns("r", "k", range(3, 6), [1.0, 2.0, 3.0], [0.0] * 3)
    assert (chunk.min_step, chunk.last_step, chunk.in_order) == (3, 5, True)


def test_chunks_in_step_order_are_joined_and_cut_to_the_range() -> None:
    chunks = [packed([0, 1, 2]), packed([2, 3, 4]), packed([5, 6])]
    steps, values, times = join_chunks(chunks, 2, 5)
    assert list(steps) == [2, 2, 3, 4, 5] and list(values) == [2.5, 2.5, 3.5, 4.5, 5.5]
    assert list(times) == [2.0, 0.0, 1.0, 2.0, 0.0]
    assert list(join_chunks(chunks)[0]) == [0, 1, 2, 2, 3, 4, 5, 6]
    assert list(join_chunks(chunks, 7)[0]) == [] and list(join_chunks([], 0, 9)[0]) == []


def test_chunks_stored_out_of_step_order_that_follow_one_another_join_by_step() -> None:
    chunks = [packed([5, 6], t0=10.0), packed([0, 1, 2]), packed([3, 3, 4], t0=20.0)]
    steps, values, times = join_chunks(chunks, 1, 5)
    assert list(steps) == [1, 2, 3, 3, 4, 5] and list(values) == [1.5, 2.5, 3.5, 3.5, 4.5, 5.5]
    assert list(times) == [1.0, 2.0, 20.0, 21.0, 22.0, 10.0]
    assert list(join_chunks(chunks)[0]) == [0, 1, 2, 3, 3, 4, 5, 6]


def test_chunks_out_of_order_are_sorted_by_step_then_time() -> None:
    chunks = [packed([5, 6], t0=10.0), packed([6, 1, 5], t0=1.0)]
    steps, values, times = join_chunks(chunks)
    assert list(steps) == [1, 5, 5, 6, 6] and list(times) == [2.0, 3.0, 10.0, 1.0, 11.0]
    assert list(values) == [1.5, 5.5, 5.5, 6.5, 6.5]
    assert list(join_chunks(chunks, 5, 5)[1]) == [5.5, 5.5]


def test_a_series_of_points_reads_nan_as_none_and_keeps_infinities() -> None:
    points = MetricPoints(run_id="r", key="k", steps=array("q", [0, 1, 2]),
                          values=array("d", [math.nan, math.inf, 1.0]),
                          timestamps=array("d", [0.0, 1.0, 2.0]), total=3, first_step=0,
                          last_step=2)  # fmt: skip
    series = series_of(points)
    assert series.values == [None, math.inf, 1.0] and series.steps == [0, 1, 2]
