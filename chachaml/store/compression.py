"""How a stored chunk's columns are kept on disk: the chunk format, one number per chunk row.

A :class:`~chachaml.records.runs.MetricChunk` carries packed little-endian arrays (8 bytes a
step, a value, a timestamp); that is also what travels over HTTP. The store keeps them in a
chunk format, recorded in each row's ``format`` column (migration 21):

- ``RAW`` (0): the packed arrays as they are. Every chunk stored before migration 21 is in
  it and is read as it is; a chunk too small to gain (a point or two) is still stored so.
- ``SHUFFLED_ZSTD`` (1): each column byte-shuffled (every item's first byte, then every
  second byte, ...), then one zstd frame at level 1. Shuffling puts the bytes that barely
  change (a float's sign and exponent, a step's high bytes) side by side, where zstd makes
  next to nothing of them.

Measured on 50,000-point chunks on the 2-core box (bytes a point; encode / decode ns a
point): steps in order 0.01 B, 5 / 4 ns; timestamps 1 µs apart 0.24 B, 10 ms apart 2.5 B;
a constant value 0.00 B; float32 losses stored as float64 3.0 B; full float64 noise 6.7 B,
7 / 5 ns. zlib at level 1 on the same shuffled bytes: about the same sizes, 4-10x slower
to encode (16-140 ns a column); delta-of-delta or XOR passes would need a Python operation
per point (numpy is not a dependency), slower than the whole codec, for a byte or two on
timestamps only. zstd is ``compression.zstd`` from Python 3.14, ``backports.zstd`` before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

RAW: Final = 0
SHUFFLED_ZSTD: Final = 1
FORMATS: Final = (RAW, SHUFFLED_ZSTD)
LEVEL: Final = 1  # levels 3 and up cost 1.5-2x the time for 1-4 % less
WIDTH: Final = 8  # bytes of a step, value or timestamp
SMALL: Final = 4  # chunks of fewer points stay raw: a zstd frame's header outweighs them


class CorruptChunk(ValueError):
    """A stored chunk that cannot be decoded to the points its row says it holds."""


def shuffle(data: bytes) -> bytes:
    """``data`` (8-byte items) with its bytes grouped by position: all first bytes, then ..."""
    return b"".join(data[i::WIDTH] for i in range(WIDTH))


def unshuffle(data: bytes) -> bytes:
    """The inverse of :func:`shuffle`."""
    n = len(data) // WIDTH
    out = bytearray(len(data))
    for i in range(WIDTH):
        out[i::WIDTH] = data[i * n : (i + 1) * n]
    return bytes(out)


def encode(
    count: int, steps: bytes, values: bytes, times: bytes
) -> tuple[int, bytes, bytes, bytes]:
    """The format and stored columns of a chunk of ``count`` points given as packed arrays.

    ``RAW`` when compressing would not make the chunk smaller.
    """
    if count < SMALL:
        return RAW, steps, values, times
    packed = tuple(zstd.compress(shuffle(c), LEVEL) for c in (steps, values, times))
    if sum(map(len, packed)) >= len(steps) + len(values) + len(times):
        return RAW, steps, values, times
    return SHUFFLED_ZSTD, packed[0], packed[1], packed[2]


def compress_items(data: bytes) -> bytes:
    """8-byte items shuffled and compressed as a column is (a chunk's outline, for one)."""
    return zstd.compress(shuffle(data), LEVEL)


def decompress_items(data: bytes, what: str) -> bytes:
    """The inverse of :func:`compress_items`; ``CorruptChunk`` naming ``what`` if it fails."""
    try:
        raw = zstd.decompress(data)
    except zstd.ZstdError as exc:
        raise CorruptChunk(f"{what} does not decompress: {exc}") from exc
    if len(raw) % WIDTH:
        raise CorruptChunk(f"{what} holds {len(raw)} bytes, not 8-byte items")
    return unshuffle(raw)


def _raw(fmt: int, count: int | None, data: bytes) -> bytes:
    """A stored column's bytes before unshuffling: raw items, or their byte planes."""
    if fmt == RAW:
        raw = data
    elif fmt == SHUFFLED_ZSTD:
        try:
            raw = zstd.decompress(data)
        except zstd.ZstdError as exc:
            raise CorruptChunk(f"a compressed metric chunk does not decompress: {exc}") from exc
    else:
        raise CorruptChunk(
            f"a metric chunk is in format {fmt}, which this chachaml does not know (it knows"
            f" {', '.join(map(str, FORMATS))}): upgrade chachaml to read it"
        )
    if len(raw) % WIDTH if count is None else len(raw) != count * WIDTH:
        expected = "a whole number of 8-byte items" if count is None else count * WIDTH
        raise CorruptChunk(
            f"a metric chunk of {count or 'some'} points holds {len(raw)} bytes in a column,"
            f" not {expected}"
        )
    return raw


def decode(fmt: int, count: int | None, data: bytes) -> bytes:
    """One stored column of a chunk of ``count`` points, back as its packed array.

    ``CorruptChunk`` when the format is unknown or the bytes are not ``count`` items (any
    whole number of items when ``count`` is ``None``).
    """
    raw = _raw(fmt, count, data)
    return raw if fmt == RAW else unshuffle(raw)


class Column:
    """A stored column decompressed once, whose items are then taken a stretch at a time.

    Taking items ``a..b`` of a shuffled column copies only their bytes out of each byte
    plane: the edge of a chart's range needs a few blocks of a 50,000-point chunk, not all
    of it unshuffled (~0.7 ms a column).
    """

    def __init__(self, fmt: int, count: int, data: bytes) -> None:
        self._fmt, self._count, self._raw = fmt, count, _raw(fmt, count, data)

    def items(self, start: int, stop: int) -> bytes:
        """Items ``start..stop-1`` (clipped to the column) as a packed array."""
        start, stop = max(0, start), min(stop, self._count)
        if start >= stop:
            return b""
        if self._fmt == RAW:
            return self._raw[start * WIDTH : stop * WIDTH]
        n, out = self._count, bytearray((stop - start) * WIDTH)
        for i in range(WIDTH):
            out[i::WIDTH] = self._raw[i * n + start : i * n + stop]
        return bytes(out)


def join_columns(stored: Sequence[tuple[int, int | None, bytes]]) -> bytearray:
    """Stored columns ``(format, count, bytes)`` decoded one after another into one buffer.

    Each chunk's byte planes are written straight to their place in the result (one copy),
    rather than unshuffled and then appended: a million points read in 25 ms, not 45-75.
    """
    parts = [(fmt, _raw(fmt, count, data)) for fmt, count, data in stored]
    out = bytearray(sum(len(raw) for _, raw in parts))
    at = 0
    for fmt, raw in parts:
        size = len(raw)
        if fmt == RAW:
            out[at : at + size] = raw
        else:
            n = size // WIDTH
            for i in range(WIDTH):
                out[at + i : at + size : WIDTH] = raw[i * n : (i + 1) * n]
        at += size
    return out
