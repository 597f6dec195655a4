"""Compressed metric chunks: every float64 bit pattern and step order comes back as logged, on
every backend; small chunks stay raw; a chunk that cannot be read says so."""

from __future__ import annotations

import math
import struct
import time
from array import array

import pytest

from chachaml.errors import StoreUnavailable
from chachaml.records.runs import NewRun
from chachaml.store import Store
from chachaml.store.codec import chunk_from_columns
from chachaml.store.compression import (
    RAW,
    SHUFFLED_ZSTD,
    Column,
    CorruptChunk,
    decode,
    encode,
    join_columns,
    shuffle,
    unshuffle,
)
from chachaml.store.sql.store import SQLStore

RUN = "c" * 32
SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1.7976931348623157e308, 5e-324,
           -5e-324, 2.2250738585072014e-308, 1e-300, 0.1, -3.5]  # fmt: skip
NAN_PAYLOAD = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
STEPS = [0, 1, 2, 5, 4, 100, 100, -7, 2**62, -(2**63), 2**63 - 1, 3, 3]  # out of order, repeats


def columns(n: int) -> tuple[bytes, bytes, bytes]:
    """``n`` points: the special steps and values over and over, timestamps a millisecond apart."""
    steps = array("q", (STEPS[i % len(STEPS)] for i in range(n)))
    values = array("d", ([*SPECIAL, NAN_PAYLOAD][i % (len(SPECIAL) + 1)] for i in range(n)))
    times = array("d", (1.7e9 + i * 1e-3 for i in range(n)))
    return steps.tobytes(), values.tobytes(), times.tobytes()


def test_shuffled_bytes_unshuffle_to_the_same_bytes() -> None:
    data = bytes(range(256)) * 8
    assert shuffle(data)[:4] == bytes([0, 8, 16, 24])
    assert unshuffle(shuffle(data)) == data and unshuffle(shuffle(b"")) == b""


@pytest.mark.parametrize("n", [1, 3, 4, 5, 13, 1000, 50_000])
def test_every_bit_pattern_comes_back_whatever_the_chunk_size(n: int) -> None:
    raw = columns(n)
    fmt, *stored = encode(n, *raw)
    assert sum(map(len, stored)) <= sum(map(len, raw)), "never larger than raw"
    if n < 4 or n >= 13:
        assert fmt == (RAW if n < 4 else SHUFFLED_ZSTD), "a few points are not worth a frame"
    assert tuple(decode(fmt, n, c) for c in stored) == raw
    assert tuple(decode(fmt, None, c) for c in stored) == raw


def test_columns_of_both_formats_join_in_order() -> None:
    pieces = [columns(n) for n in (1, 500, 3, 2_000)]
    stored = [encode(n, *raw) for n, raw in zip((1, 500, 3, 2_000), pieces, strict=True)]
    assert [fmt for fmt, *_ in stored] == [RAW, SHUFFLED_ZSTD, RAW, SHUFFLED_ZSTD]
    for i in range(3):
        parts = [(fmt, n, cols[i]) for (fmt, *cols), n in zip(stored, (1, 500, 3, 2_000),
                                                               strict=True)]  # fmt: skip
        assert join_columns(parts) == b"".join(p[i] for p in pieces)
    assert join_columns([]) == b""


@pytest.mark.parametrize("n", [1, 13, 1000])
def test_a_stretch_of_a_column_is_taken_as_the_same_bytes_in_either_format(n: int) -> None:
    raw = columns(n)
    fmt, *stored = encode(n, *raw)
    for stretch in [(0, n), (0, 1), (n // 3, n // 2 + 1), (n - 1, n), (-5, n + 5), (n, n + 1)]:
        start, stop = max(0, stretch[0]), min(n, stretch[1])
        for column, whole in zip(stored, raw, strict=True):
            expected = whole[start * 8 : stop * 8]
            assert Column(fmt, n, column).items(*stretch) == expected
            assert Column(RAW, n, whole).items(*stretch) == expected
    with pytest.raises(CorruptChunk):
        Column(fmt, n + 1, stored[0])


def test_a_regular_series_takes_a_fraction_of_a_byte_a_point() -> None:
    n = 50_000
    steps = array("q", range(n)).tobytes()
    values = array("d", [0.5] * n).tobytes()
    times = array("d", (1.7e9 + i * 1e-6 for i in range(n))).tobytes()
    fmt, *stored = encode(n, steps, values, times)
    assert fmt == SHUFFLED_ZSTD and sum(map(len, stored)) / n < 1.0


def test_a_chunk_that_cannot_be_decoded_says_why() -> None:
    fmt, steps, _, _ = encode(100, *columns(100))
    with pytest.raises(CorruptChunk, match="format 7, which this chachaml does not know"):
        decode(7, 100, steps)
    with pytest.raises(CorruptChunk, match="holds 800 bytes in a column, not 808"):
        decode(fmt, 101, steps)
    with pytest.raises(CorruptChunk, match="does not decompress"):
        decode(fmt, 100, steps[:-5])
    with pytest.raises(CorruptChunk, match="not a whole number of 8-byte items"):
        decode(RAW, None, b"\x00" * 12)


# ---- through a store, on each backend


async def new_run(store: Store) -> None:
    await store.create_run(NewRun(id=RUN, experiment="e", name="r", created_by="ana",
                                  started_at=time.time(), heartbeat_timeout=60.0))  # fmt: skip


def bits(values: array[float]) -> bytes:
    return values.tobytes()


def negative_zero(value: float | None) -> bool:
    return value == 0.0 and math.copysign(1.0, value) == -1.0


@pytest.mark.anyio
async def test_special_values_and_steps_round_trip_through_the_store(
    store_url: str,
) -> None:
    from chachaml.store import open_store

    store = await open_store(store_url)
    try:
        await new_run(store)
        big = columns(2_000)
        chunks = [
            chunk_from_columns(RUN, "loss", array("q", big[0]), array("d", big[1]),
                               array("d", big[2])),
            chunk_from_columns(RUN, "one", [7], [-0.0], [1.7e9]),
            chunk_from_columns(RUN, "few", [9, 2, 5], [math.nan, math.inf, 5e-324],
                               [3.0, 2.0, 1.0]),
        ]  # fmt: skip
        await store.log_metrics(chunks)
        assert isinstance(store, SQLStore)
        stored = await store.database.query(lambda db: db.fetchall(
            "SELECT key, format FROM metric_chunks ORDER BY key"))  # fmt: skip
        assert [tuple(r) for r in stored] == [("few", RAW), ("loss", SHUFFLED_ZSTD), ("one", RAW)]

        points = await store.metric_points(RUN, "loss")
        order = sorted(range(2_000), key=lambda i: (array("q", big[0])[i], array("d", big[2])[i]))
        expected = [array(t, c) for t, c in zip("qdd", big, strict=True)]
        assert points.steps.tolist() == [expected[0][i] for i in order]
        assert bits(points.values) == bits(array("d", [expected[1][i] for i in order]))
        assert bits(points.timestamps) == bits(array("d", [expected[2][i] for i in order]))
        assert (points.total, points.first_step, points.last_step) == (2_000, -(2**63), 2**63 - 1)

        one = await store.metric_history(RUN, "one")
        assert one.steps == [7] and negative_zero(one.values[0])
        few = await store.metric_history(RUN, "few")
        assert few.steps == [2, 5, 9] and few.values == [math.inf, 5e-324, None]
        part = await store.metric_history(RUN, "loss", min_step=0, max_step=5)
        assert sorted(set(part.steps)) == [0, 1, 2, 3, 4, 5]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_chunk_in_an_unknown_format_is_a_clear_store_error(store_url: str) -> None:
    from chachaml.store import open_store

    store = await open_store(store_url)
    try:
        await new_run(store)
        await store.log_metrics([chunk_from_columns(RUN, "loss", range(10), [1.0] * 10,
                                                    [1.0] * 10)])  # fmt: skip
        assert isinstance(store, SQLStore)
        await store.database.transact(lambda db: db.execute("UPDATE metric_chunks SET format = 9"))
        with pytest.raises(StoreUnavailable, match=r"'loss' of run 'c+': a metric chunk is in"
                                                   " format 9"):  # fmt: skip
            await store.metric_history(RUN, "loss")
    finally:
        await store.close()
