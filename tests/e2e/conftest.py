"""Everything in this folder runs real processes, sockets or a browser: it is marked ``e2e``.

``pytest -m "not e2e"`` runs the in-process suite alone; CI runs both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fork_server import ServerFactory, shared_factory

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def server_factory() -> ServerFactory:
    """Real ``chachaml serve`` processes, for the tests that need a socket (webhooks, curl):
    the worker's one factory, shared with :func:`tests.support.mcp_seed.serving`."""
    return shared_factory()
