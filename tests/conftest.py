"""Shared fixtures: every store and API test runs once per backend.

``backend`` is ``sqlite``, ``postgres`` and, for the tests that say so, ``remote``: the
remote store (:class:`~chachaml.client.remote.RemoteStore`) talking to a server app in this
process over a fresh SQLite file (:mod:`tests.support.remote_server`), through
``httpx.ASGITransport``.
Remote runs are added to

- the ``Store`` contract tests (modules marked ``contract``) that use ``store``, except those
  marked ``server_store`` (ServerStore-only methods: tokens, idempotency keys, alert firing,
  the webhook queue) and those that ask for ``store_url`` itself (they open more connections
  to the same database);
- tests that use ``tracking_store_url`` (modules whose ``client`` tests also run over HTTP
  override ``store_url`` with it): the client reaches the server of ``remote_server``, a
  team-mode server where the user ``tester`` holds an admin token; except those marked
  ``database_url`` (they hand the URL to another process or open the database directly).

``tests/e2e/test_remote_socket.py`` keeps one real ``chachaml serve`` over a socket.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from chachaml.client.client import Client
from chachaml.settings import Settings
from chachaml.store import Store, open_store
from tests.support.fake_providers import FakeProvider, fake_provider
from tests.support.schema_pool import SchemaPool
from tests.support.services import vacuum_catalogs
from tests.support.sqlite_template import fresh_sqlite

if TYPE_CHECKING:
    from distributed import LocalCluster

    from chachaml.client.pipelines.dask import DaskExecutor
    from tests.support.remote_server import InProcessServer

# Some machines set PYTHONDONTWRITEBYTECODE: then each of the two workers rewrites every test
# module's asserts again (~4 CPU-s each) and each of the suite's ~150 child processes compiles
# what it imports again. The suite caches bytecode (in __pycache__, ignored by git) instead.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
REMOTE_TOKEN = "tester-remote-token"
# tests.support.remote_server.BASE_URL (imported lazily: the server)
REMOTE_URL = "http://127.0.0.1"


def _over_remote(metafunc: pytest.Metafunc) -> bool:
    """Whether a test also runs over the in-process remote store (see the module's docstring)."""
    marked = metafunc.definition.get_closest_marker
    if marked("database_url") is not None:
        return False
    if "tracking_store_url" in metafunc.fixturenames:
        return True
    if marked("contract") is None or marked("server_store") is not None:
        return False
    asked = inspect.signature(metafunc.function).parameters
    return "store" in asked and "store_url" not in asked


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend`` (and so ``store_url``, ``store``) over the backends that apply."""
    if "backend" in metafunc.fixturenames:
        params = [*BACKENDS, "remote"] if _over_remote(metafunc) else BACKENDS
        metafunc.parametrize("backend", params, indirect=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Once a run (in the process that starts the workers), clear the test database's dead
    catalog rows that earlier runs left (see :func:`tests.support.services.vacuum_catalogs`)."""
    if not hasattr(session.config, "workerinput"):
        vacuum_catalogs()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default in pyproject): one worker per core, plus two, because part of
    the suite waits on child processes, sockets and the browser rather than the CPU (on 2
    cores: 3:41-3:52 with three workers, 3:32 with four, 3:36 with five)."""
    return (os.cpu_count() or 1) + 2


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep a module's tests on one xdist worker when they share a module-scoped fixture.

    Spread over workers (``--dist load``), each worker would build its own copy of the
    module's seeded server or browser; grouped (``--dist loadgroup``, in pyproject), it is
    built once. Modules without such fixtures still spread test by test.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or not isinstance(item, pytest.Function):
            continue
        shared = any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs)
        if shared and item.get_closest_marker("xdist_group") is None:  # a named group wins
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Session-wide, so module-scoped async fixtures (seeded stores, clients) can share a loop."""
    return "asyncio"


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite``, ``postgres`` or ``remote``."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def schema_pool() -> Iterator[SchemaPool]:
    """Migrated PostgreSQL schemas this worker empties and reuses (see its module)."""
    pool = SchemaPool()
    try:
        yield pool
    finally:
        pool.close()


def _fresh_store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield fresh_sqlite(tmp_path / "chachaml.db")
    else:
        pool: SchemaPool = request.getfixturevalue("schema_pool")
        with pool.schema() as url:
            yield url


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The database of ``store`` and ``store_url``; ``None`` for the remote store."""
    if backend == "remote":
        yield None
        return
    yield from _fresh_store_url(backend, tmp_path, request)


@pytest.fixture
def store_url(db_url: str | None) -> str:
    """A fresh, empty database URL for the backend under test (its own PostgreSQL schema)."""
    assert db_url is not None, "a remote store has no database URL: use store or client"
    return db_url


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like ``store_url``, but one store per module and backend: for read-only tests over a
    seeded store, which then seed once instead of once per test."""
    yield from _fresh_store_url(request.param, tmp_path_factory.mktemp("module-store"), request)


@pytest.fixture
def remote_server(tmp_path: Path) -> InProcessServer:
    """A team-mode server app in this process over a fresh SQLite file (``tester``: admin)."""
    from tests.support.remote_server import InProcessServer

    tokens = (("tester", REMOTE_TOKEN, "admin"),)
    fresh_sqlite(tmp_path / "server.db")
    return InProcessServer(tmp_path / "server.db", tmp_path / "artifacts", tokens)


def remote_transport(request: pytest.FixtureRequest, url: str) -> InProcessServer | None:
    """The in-process server a ``client``-style URL reaches (``None`` for a database URL)."""
    if url != REMOTE_URL:
        return None
    server: InProcessServer = request.getfixturevalue("remote_server")
    return server


@pytest.fixture
def tracking_store_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """``store_url``'s backends, plus ``remote``: the URL of ``remote_server``."""
    if backend == "remote":
        yield REMOTE_URL
        return
    yield from _fresh_store_url(backend, tmp_path, request)


@pytest.fixture
async def store(db_url: str | None, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, empty store: a database, or a remote store over a local-mode server app."""
    if db_url is None:
        from chachaml.client.remote import RemoteStore
        from tests.support.remote_server import InProcessServer

        fresh_sqlite(tmp_path / "server.db")
        server = InProcessServer(tmp_path / "server.db", tmp_path / "server-artifacts")
        opened: Store = await RemoteStore.open(REMOTE_URL, transport=server)
    else:
        opened = await open_store(db_url)
    try:
        yield opened
    finally:
        await opened.close()


def make_settings(**changes: object) -> Settings:
    """Settings for tests: no environment, a fixed user, fast heartbeats and flushes."""
    base = Settings(user="tester", heartbeat_seconds=0.2, flush_interval=0.05)
    return base.with_overrides(**changes)


@pytest.fixture
def client(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Client]:
    transport = remote_transport(request, store_url)
    settings = make_settings(token=REMOTE_TOKEN if transport is not None else None)
    c = Client(store=store_url, artifacts=str(tmp_path / "artifacts"), settings=settings,
               transport=transport)  # fmt: skip
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def postgres_client(schema_pool: SchemaPool, tmp_path: Path) -> Iterator[Client]:
    """A client of a fresh PostgreSQL schema: a store that Dask workers can share."""
    with schema_pool.schema() as url:
        c = Client(store=url, artifacts=str(tmp_path / "artifacts"), settings=make_settings())
        try:
            yield c
        finally:
            c.close()


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[LocalCluster]:
    """A Dask cluster of two single-threaded worker processes per module that uses one.

    Per module, not per session: an idle cluster still costs about 0.05 CPU-s a second (the
    scheduler's and nannies' periodic work), and kept for the rest of a 3.5-minute run after
    the Dask modules end that was ~9 CPU-s, against ~1 CPU-s for a second start. Without
    Dask's statistical profiler (a stack sample every 10 ms in every worker), which idle
    workers would run too; its nannies hand this config to the workers.
    """
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        LocalCluster(  # type: ignore[no-untyped-call]
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
    ):
        yield cluster


@pytest.fixture(scope="module")
def dask_executor(dask_cluster: LocalCluster) -> Iterator[DaskExecutor]:
    """A ``DaskExecutor`` connected to ``dask_cluster`` for the module."""
    from chachaml.client.pipelines.dask import DaskExecutor

    with DaskExecutor(dask_cluster.scheduler_address) as executor:
        yield executor


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
