"""The registry across processes: promotions racing from two processes on one store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chachaml.client.client import Client
from chachaml.client.registry import Registry
from tests.client.test_registry import new_version


@pytest.fixture
def registry(client: Client) -> Registry:
    return Registry(client)


PROMOTER = textwrap.dedent(
    """
    import sys
    from chachaml.client.registry import Registry
    from chachaml.client.client import Client

    client = Client(store=sys.argv[1], artifacts=sys.argv[2])
    registry = Registry(client)
    registry.models()  # the store is open: tell the test, wait for the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(20):
        registry.promote("m", int(sys.argv[3]), "production")
    client.close()
    """
)


@pytest.mark.database_url
def test_concurrent_promotions_from_two_processes_leave_one_production_version(
    client: Client, registry: Registry, store_url: str, tmp_path: Path
) -> None:
    new_version(client, registry)
    new_version(client, registry)
    env = {**os.environ, "CHACHA_USER": "proc"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROMOTER, store_url, str(tmp_path / "artifacts"), str(v)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in (1, 2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    stages = sorted(v.stage for v in registry.model_versions("m"))
    assert stages == ["archived", "production"]
    history = registry.model("m").history
    promoted = [e for e in history if e.new == "production" and e.user == "proc"]
    archived = [e for e in history if e.new == "archived"]
    assert len(promoted) >= 2 and len(archived) == len(promoted) - 1
