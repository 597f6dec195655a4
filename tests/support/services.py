"""External services the tests use: where they are, and what to do when one is missing.

On a laptop without the service the test is skipped with the reason; in CI (``CI=true``)
the same absence fails the test, because CI must exercise every backend and client.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import anyio
import asyncpg
import pytest

T = TypeVar("T")
POSTGRES_URL = os.environ.get("CHACHAML_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    """Skip the test with ``reason`` — or fail it, in CI."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def on_own_loop(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on an event loop of its own thread: the calling thread may be inside a
    module-scoped async fixture's loop, where ``anyio.run`` refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, work).result()


def _admin(sql: str) -> None:
    on_own_loop(lambda: _execute(sql))


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database; yields a store URL that uses it, then drops it."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        _admin(f"CREATE SCHEMA {schema}")
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}search_path={schema}"
    finally:
        _admin(f"DROP SCHEMA {schema} CASCADE")


def vacuum_catalogs() -> None:
    """Vacuum the test database (its catalogs above all), if its server is reachable.

    Every schema a test creates and drops leaves dead rows in ``pg_attribute``, ``pg_class``,
    ``pg_depend``...: some 700 schemas a run. The machines' server runs with autovacuum off,
    so they pile up across runs (500,000 dead rows in ``pg_attribute``, 105 MB, after a
    few), and each run costs the server more catalog work than the last. Vacuuming once at
    the start of a run takes under a second.
    """
    with contextlib.suppress(OSError, asyncpg.PostgresError):  # no server: the tests say so
        _admin("VACUUM")
