"""The migration tests' database: empty and unmigrated, on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chachaml.store.postgres import PostgresDatabase
from chachaml.store.sql.database import Database
from chachaml.store.sqlite import SQLiteDatabase
from tests.support.services import postgres_schema


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, unmigrated database of the backend."""
    if backend == "sqlite":
        opened: Database = await SQLiteDatabase.open(f"sqlite:///{tmp_path / 'old.db'}")
        try:
            yield opened
        finally:
            await opened.close()
        return
    with postgres_schema() as url:
        opened = await PostgresDatabase.open(url)
        try:
            yield opened
        finally:
            await opened.close()
