"""Steps over stored metric chunks that SQL alone cannot compute.

A chunk's step span is in its packed ``steps`` array, which neither SQLite nor PostgreSQL
can decode: :func:`fill_step_spans` reads the chunks in batches and fills the columns in
Python, inside the migration's transaction. Compressing the chunks stored before migration
21 is not a migration step (it may take minutes on a big store, and raw chunks read as they
are): :func:`compress_stored_chunks` does it on demand, ``chachaml compress-metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from chachaml.store.codec import step_span
from chachaml.store.compression import RAW, encode
from chachaml.store.outline import make_outline, outlined
from chachaml.store.sql.database import Database, Tx

BATCH = 100  # chunks held in memory at once (a 50,000-point chunk's steps are 400 kB)


async def fill_step_spans(db: Tx) -> None:
    """Fill ``min_step``, ``max_step`` and ``in_order`` of every chunk stored before them.

    On SQLite this rewrites each chunk row (a row is stored whole), so it takes about as
    long as copying the metric data once; on PostgreSQL the packed arrays stay in place.
    """
    last = 0
    while rows := await db.fetchall(
        "SELECT id, steps FROM metric_chunks WHERE id > ? ORDER BY id LIMIT ?", (last, BATCH)
    ):
        await db.executemany(
            "UPDATE metric_chunks SET min_step = ?, max_step = ?, in_order = ? WHERE id = ?",
            [(*_span(r["steps"]), r["id"]) for r in rows],
        )
        last = rows[-1]["id"]


def _span(steps: bytes) -> tuple[int, int, int]:
    low, high, in_order = step_span(steps)
    return low, high, int(in_order)


REWRITE_BATCH = 20  # raw chunks rewritten per transaction (a 50,000-point chunk is 1.2 MB)


@dataclass
class Compressed:
    """What :func:`compress_stored_chunks` did: chunks rewritten, their bytes before and after."""

    chunks: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


async def compress_chunks(db: Tx, after: int) -> tuple[int | None, Compressed]:
    """Rewrite the next raw chunks with an id above ``after`` compressed, with an outline.

    The last id seen (``None`` when none is left) and what was rewritten. A chunk that does
    not shrink stays raw, as when it is logged. A rewritten chunk gets the outline a chunk
    logged now would (:mod:`chachaml.store.outline`): in step order, finite values, a block
    or more; otherwise none, as before.
    """
    report = Compressed()
    rows = await db.fetchall(
        "SELECT id, count, in_order, steps, vals, times FROM metric_chunks"
        " WHERE format = ? AND id > ? ORDER BY id LIMIT ?",
        (RAW, after, REWRITE_BATCH),
    )
    if not rows:
        return None, report
    updates = []
    for r in rows:
        columns = (bytes(r["steps"]), bytes(r["vals"]), bytes(r["times"]))
        fmt, steps, values, times = encode(r["count"], *columns)
        if fmt != RAW:
            keep = outlined(r["count"], bool(r["in_order"]), columns[1])
            outline = make_outline(*columns) if keep else None
            updates.append((fmt, steps, values, times, outline, r["id"]))
            report.chunks += 1
            report.bytes_before += sum(map(len, columns))
            report.bytes_after += len(steps) + len(values) + len(times)
    if updates:
        await db.executemany(
            "UPDATE metric_chunks SET format = ?, steps = ?, vals = ?, times = ?, outline = ?"
            " WHERE id = ?",
            updates,
        )
    return rows[-1]["id"], report


async def compress_stored_chunks(database: Database) -> Compressed:
    """Rewrite every chunk stored raw (before migration 21) compressed, a batch at a time.

    Each batch is one short write transaction, so a server may keep running meanwhile, and an
    interrupted run resumes where it stopped. Reads never wait for this: a raw chunk reads
    as it is. SQLite keeps the pages it frees for later writes (``VACUUM`` returns them).
    """
    report = Compressed()
    last: int | None = 0
    while last is not None:
        last, batch = await database.transact(partial(compress_chunks, after=last))
        report.chunks += batch.chunks
        report.bytes_before += batch.bytes_before
        report.bytes_after += batch.bytes_after
    return report
