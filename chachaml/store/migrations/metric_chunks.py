"""Migration steps over stored metric chunks that SQL alone cannot compute.

A chunk's step span is in its packed ``steps`` array, which neither SQLite nor PostgreSQL
can decode: these steps read the chunks in batches and fill the columns in Python, inside
the migration's transaction.
"""

from __future__ import annotations

from chachaml.store.codec import step_span
from chachaml.store.sql.database import Tx

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
