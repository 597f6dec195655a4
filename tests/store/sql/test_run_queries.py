"""Runs ordered by a param are read from the params_order index, a page at a time.

The index's expressions are written out in each dialect's migration (migrations never
change once shipped) and the queries build theirs in ``run_queries``; a planner uses the
index only while the two are the same expressions.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chachaml.records.runs import Direction, RunQuery
from chachaml.store import open_store
from chachaml.store.migrations import postgres, sqlite
from chachaml.store.sql.database import Row, Tx
from chachaml.store.sql.run_queries import param_kind_sql, param_number_sql, param_page_sql
from chachaml.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


def test_the_index_holds_the_queries_expressions_in_both_dialects() -> None:
    (statement,) = next(m for m in sqlite.MIGRATIONS if m.version == 14).statements
    (same,) = next(m for m in postgres.MIGRATIONS if m.version == 14).statements
    assert isinstance(statement, str) and statement == same
    assert statement.startswith("CREATE INDEX params_order ON params (key,")
    assert f" {param_kind_sql('value')}, {param_number_sql('value')}, value)" in statement


@pytest.mark.parametrize("direction", ["min", "max"])
async def test_sqlite_reads_a_page_by_a_param_from_the_index(
    tmp_path: Path, direction: Direction
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    assert isinstance(store, SQLiteStore)
    query = RunQuery(order_by_param="lr", direction=direction, top_level=True, limit=51)
    join = " JOIN params ps ON ps.run_id = r.id AND ps.key = ?"  # as RunQueries._filter
    sql = param_page_sql(join, " WHERE r.archived = 0 AND r.parent_id IS NULL", query)

    async def plan(db: Tx) -> list[Row]:
        return await db.fetchall("EXPLAIN QUERY PLAN " + sql, [time.time(), "lr"] * 2)

    try:
        steps = [str(row["detail"]) for row in await store.database.query(plan)]
    finally:
        await store.close()
    # each kind walks the index by (key, kind) in order; only ties are sorted
    assert sum("COVERING INDEX params_order (key=? AND <expr>=?)" in s for s in steps) == 2
    assert sum("TEMP B-TREE FOR RIGHT PART OF ORDER BY" in s for s in steps) == 2
