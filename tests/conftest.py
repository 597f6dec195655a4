"""Shared fixtures: every store and API test runs once per backend in ``BACKENDS``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chachaml.settings import Settings
from chachaml.store import Store, open_store
from chachaml.tracking.client import Client
from tests.services import postgres_schema

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL for the backend under test (its own PostgreSQL schema)."""
    backend: str = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'chachaml.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()


def make_settings(**changes: object) -> Settings:
    """Settings for tests: no environment, a fixed user, fast heartbeats and flushes."""
    base = Settings(user="tester", heartbeat_seconds=0.2, flush_interval=0.05)
    return base.with_overrides(**changes)


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[Client]:
    c = Client(store=store_url, artifacts=str(tmp_path / "artifacts"), settings=make_settings())
    try:
        yield c
    finally:
        c.close()
