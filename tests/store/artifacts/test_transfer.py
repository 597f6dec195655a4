"""``chachaml artifacts migrate --to s3://...`` against a real S3-compatible server (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.client.registry import Registry
from chachaml.store.artifacts import LocalArtifactStore, open_artifact_store
from chachaml.store.artifacts.s3 import PART_SIZE
from tests.conftest import make_settings
from tests.support.s3_server import S3Server, moto_s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The CLI reads the S3 settings from the environment, as in a deployment."""
    monkeypatch.setenv("CHACHAML_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("CHACHAML_S3_REGION", "us-east-1")
    monkeypatch.setenv("CHACHAML_S3_ACCESS_KEY_ID", s3.access_key_id)
    monkeypatch.setenv("CHACHAML_S3_SECRET_ACCESS_KEY", s3.secret_access_key)
    return s3


PAYLOADS = {"small": b"tiny", "json": {"a": [1, 2, 3]}, "big": os.urandom(PART_SIZE + 4321)}


def seed_local(tmp_path: Path) -> tuple[str, str, str]:
    """A store and local artifact root with three artifacts and a registered model."""
    db, local = f"sqlite:///{tmp_path / 'c.db'}", str(tmp_path / "artifacts")
    client = Client(db, local, settings=make_settings())
    try:
        with client.run(experiment="m") as run:
            for name, value in PAYLOADS.items():
                run.log_artifact(name, value)
            run.log_artifact("model", {"coef": 0.25})
            Registry(client).register_model("scorer", stage="production")
    finally:
        client.close()
    return db, local, run.id


def migrate(db: str, local: str, target: str) -> int:
    return main(["--store", db, "--artifacts", local, "artifacts", "migrate", "--to", target])


def test_migrate_moves_a_local_root_to_s3_and_everything_loads_from_there(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, local, run_id = seed_local(tmp_path)
    root = s3_env.fresh_root()
    assert migrate(db, local, root) == 0
    out, err = capsys.readouterr()
    assert "copied 4 objects" in out and "skipped 0" in out and "hashes verified" in out
    assert f"CHACHAML_ARTIFACTS={root}" in out
    assert "4/4" not in err  # no progress bars off a terminal (see test_first_hour)
    client = Client(db, root, settings=make_settings(s3=s3_env.settings()))
    try:
        for name, value in PAYLOADS.items():
            assert client.load_artifact(run_id, name) == value
        assert Registry(client).load_model("scorer") == {"coef": 0.25}
    finally:
        client.close()


def test_migrate_is_resumable_and_skips_what_is_already_there(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, local, _ = seed_local(tmp_path)
    root = s3_env.fresh_root()
    first = next(LocalArtifactStore(local).objects())
    target = open_artifact_store(root, s3_env.settings())
    anyio.run(target.put_file, LocalArtifactStore(local).path_of(first))  # an interrupted run
    assert migrate(db, local, root) == 0
    assert "copied 3 objects" in capsys.readouterr().out
    assert migrate(db, local, root) == 0
    assert "copied 0 objects (0.0 MB), skipped 4" in capsys.readouterr().out


def test_migrate_reports_a_damaged_local_object_and_copies_the_rest(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, local, _ = seed_local(tmp_path)
    damaged = next(LocalArtifactStore(local).objects())
    LocalArtifactStore(local).path_of(damaged).write_bytes(b"bit rot")
    root = s3_env.fresh_root()
    assert migrate(db, local, root) == 1
    out, err = capsys.readouterr()
    assert "copied 3 objects" in out
    assert f"1 local objects do not match their hash and were not copied: {damaged.uri}" in err
    assert not anyio.run(open_artifact_store(root, s3_env.settings()).contains, damaged)


def test_migrate_with_wrong_credentials_stops_before_copying(
    s3_env: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, local, _ = seed_local(tmp_path)
    monkeypatch.setenv("CHACHAML_S3_SECRET_ACCESS_KEY", "wrong")
    assert migrate(db, local, s3_env.fresh_root()) == 2
    err = capsys.readouterr().err
    assert "refused the credentials" in err and "objects [" not in err


def test_migrate_needs_a_local_source(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    argv = ["--store", db, "artifacts", "migrate", "--from", s3_env.fresh_root()]
    assert main([*argv, "--to", s3_env.fresh_root()]) == 2
    assert "copies from a local folder" in capsys.readouterr().err
