"""Shared fixtures: every store and API test runs once per backend in ``BACKENDS``.

Modules whose ``client`` tests should also run over HTTP override ``store_url`` with
``tracking_store_url``, which adds ``remote``: a fresh ``chachaml serve`` per test over a
fresh SQLite file, reached with a token of the user ``tester``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chachaml.client.client import Client
from chachaml.settings import Settings
from chachaml.store import ServerStore, open_store
from tests.fork_server import ServerFactory
from tests.support.fake_providers import FakeProvider, fake_provider
from tests.support.services import postgres_schema

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
REMOTE_TOKEN = "tester-remote-token"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Session-wide, so module-scoped async fixtures (seeded stores, clients) can share a loop."""
    return "asyncio"


def _fresh_store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'chachaml.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL for the backend under test (its own PostgreSQL schema)."""
    yield from _fresh_store_url(request.param, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like ``store_url``, but one store per module and backend: for read-only tests over a
    seeded store, which then seed once instead of once per test."""
    yield from _fresh_store_url(request.param, tmp_path_factory.mktemp("module-store"))


@pytest.fixture(scope="session")
def server_factory() -> Iterator[ServerFactory]:
    factory = ServerFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(params=[*BACKENDS, "remote"])
def tracking_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``store_url``'s backends, plus ``remote``: the URL of a fresh server on 127.0.0.1."""
    if request.param != "remote":
        yield from _fresh_store_url(request.param, tmp_path)
        return
    factory: ServerFactory = request.getfixturevalue("server_factory")
    db = f"sqlite:///{tmp_path / 'server.db'}"
    with factory.serve(db, tmp_path / "artifacts", f"tester:{REMOTE_TOKEN}:admin") as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[ServerStore]:
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
    token = REMOTE_TOKEN if store_url.startswith("http://") else None
    settings = make_settings(token=token)
    c = Client(store=store_url, artifacts=str(tmp_path / "artifacts"), settings=settings)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def provider_server() -> Iterator[tuple[FakeProvider, str]]:
    """A local server speaking the Anthropic and OpenAI wire protocols with scripted replies."""
    with fake_provider() as served:
        yield served


@pytest.fixture
def fake(provider_server: tuple[FakeProvider, str]) -> FakeProvider:
    """The scripted provider behind ``provider_server``."""
    return provider_server[0]


@pytest.fixture(params=["anthropic", "openai"])
def provider(request: pytest.FixtureRequest) -> str:
    """Each chat provider in turn."""
    name: str = request.param
    return name
