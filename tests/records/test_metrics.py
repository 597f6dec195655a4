"""A metric history read from the store stays columnar: numpy and pandas get its arrays, and
its lists, made on first use, are those of a series built from lists."""

from __future__ import annotations

import copy
import math
import pickle
from array import array

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from chachaml.records.runs import MetricSeries

RUN = "d" * 32


def columnar() -> MetricSeries:
    return MetricSeries.from_columns(
        RUN, "loss", array("q", [1, 2, 5]), array("d", [0.5, math.nan, -math.inf]),
        array("d", [1.7e9, 1.7e9 + 1, 1.7e9 + 2.5]),
    )  # fmt: skip


LISTED = MetricSeries(run_id=RUN, key="loss", steps=[1, 2, 5], values=[0.5, None, -math.inf],
                      timestamps=[1.7e9, 1.7e9 + 1, 1.7e9 + 2.5])  # fmt: skip


def test_a_columnar_series_reads_like_one_built_from_lists() -> None:
    series = columnar()
    assert repr(series) == repr(LISTED) and "steps" not in series.__dict__, "repr stays lazy"
    assert series.steps == [1, 2, 5] and series.values == [0.5, None, -math.inf]
    assert series == LISTED and columnar() == LISTED and columnar() != LISTED.model_copy(
        update={"key": "acc"})  # fmt: skip
    assert columnar().model_dump() == LISTED.model_dump()
    assert columnar().model_dump_json() == LISTED.model_dump_json()
    assert dict(columnar()) == dict(LISTED) and str(columnar()) == str(LISTED)
    assert pickle.loads(pickle.dumps(columnar())) == LISTED
    assert copy.deepcopy(columnar()) == LISTED and columnar().model_copy() == LISTED
    changed = columnar().model_copy(update={"steps": [7, 8, 9]})
    assert changed.steps == [7, 8, 9] and changed.values == LISTED.values
    assert MetricSeries.model_json_schema(mode="serialization")["required"] == [
        "run_id", "key", "steps", "values", "timestamps"]  # fmt: skip


def test_numpy_and_pandas_get_the_columns_nan_kept() -> None:
    for series in (columnar(), LISTED):
        arrays = series.to_numpy()
        assert arrays["step"].dtype == np.int64 and arrays["step"].tolist() == [1, 2, 5]
        assert np.isnan(arrays["value"][1]) and arrays["value"][2] == -math.inf
        assert arrays["timestamp"].tolist() == [1.7e9, 1.7e9 + 1, 1.7e9 + 2.5]
        arrays["step"][0] = 99  # a copy: the series does not change
        assert series.to_numpy()["step"][0] == 1
        frame = series.to_pandas()
        assert list(frame.columns) == ["step", "value", "timestamp"]
        assert frame["timestamp"].iloc[1] == pd.Timestamp(1.7e9 + 1, unit="s", tz="UTC")
        assert frame["value"].isna().tolist() == [False, True, False]
    assert "steps" not in (lazy := columnar()).__dict__ and len(lazy.to_numpy()["step"]) == 3
    assert "steps" not in lazy.__dict__, "to_numpy makes no lists"
