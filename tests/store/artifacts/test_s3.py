"""S3 artifact roots, against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chachaml.client.client import Client
from chachaml.client.registry import Registry
from chachaml.errors import InvalidInput, NotFound, StoreUnavailable
from chachaml.settings import S3Settings, Settings
from chachaml.store.artifacts import DeletableObjects, StoredObject, open_artifact_store
from chachaml.store.artifacts.s3 import (
    CONCURRENCY,
    MIN_PART_SIZE,
    PART_SIZE,
    S3ArtifactStore,
    parse_s3_root,
)
from tests.conftest import make_settings
from tests.support.s3_server import BUCKET, S3Server, moto_s3

MISSING = "objects/ab/" + "c" * 62


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def s3_client(s3: S3Server, store_url: str) -> Iterator[Client]:
    c = Client(store=store_url, artifacts=s3.fresh_root(), settings=make_settings(s3=s3.settings()))
    try:
        yield c
    finally:
        c.close()


def key_of(root: str, uri: str) -> str:
    return f"{parse_s3_root(root)[1]}/{uri}"


def test_artifacts_of_several_sizes_round_trip_including_multipart(
    s3: S3Server, s3_client: Client
) -> None:
    payloads = {
        "empty": b"",
        "small": b"hello s3",
        "one-mb": os.urandom(1 << 20),
        "multipart": os.urandom(2 * PART_SIZE + 12345),
    }
    with s3_client.run(experiment="s3") as run:
        for name, data in payloads.items():
            run.log_artifact(name, data)
    for name, data in payloads.items():
        assert s3_client.load_artifact(run.id, name) == data
    listed = {a.name: a.size for a in s3_client.list_artifacts(run.id)}
    assert listed == {name: len(data) for name, data in payloads.items()}
    big = next(a for a in s3_client.list_artifacts(run.id) if a.name == "multipart")
    head = s3.boto().head_object(
        Bucket=BUCKET, Key=key_of(s3_client.settings.artifact_root, big.uri)
    )
    assert head["ETag"].endswith('-3"')  # three parts: uploaded with multipart
    assert head["Metadata"] == {"sha256": big.sha256}


def test_files_stream_up_and_down_in_parts_never_whole(s3: S3Server, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(10 * MIN_PART_SIZE + 7))
    store = S3ArtifactStore(s3.fresh_root(), s3.settings(), part_size=MIN_PART_SIZE)

    async def main() -> tuple[StoredObject, int, int]:
        tracemalloc.start()  # moto runs in another process: this is chachaml's memory alone
        try:
            obj = await store.put_file(source)
            upload_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            await store.copy_to(obj.uri, tmp_path / "back.bin")
            download_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return obj, upload_peak, download_peak

    obj, upload_peak, download_peak = anyio.run(main)
    assert upload_peak < (CONCURRENCY + 2) * MIN_PART_SIZE < obj.size  # parts in flight only
    assert download_peak < 2 * MIN_PART_SIZE
    assert obj.size == source.stat().st_size
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_log_file_through_the_tracking_api(s3_client: Client, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n" * 200_000)
    with s3_client.run(experiment="s3") as run:
        art = run.log_file("report.csv", path)
    assert art.content_type == "text/csv"
    assert s3_client.load_artifact(run.id, "report.csv") == path.read_bytes()


def test_a_model_registers_and_loads_from_s3(s3_client: Client) -> None:
    registry = Registry(s3_client)
    with s3_client.run(experiment="s3"):
        s3_client.log_artifact("model", {"weights": [0.5, 1.5], "bias": 2})
        version = registry.register_model("scorer", stage="production")
    assert version.version == 1
    assert registry.load_model("scorer") == {"weights": [0.5, 1.5], "bias": 2}


def test_identical_content_is_stored_once(s3: S3Server) -> None:
    root = s3.fresh_root()
    store = open_artifact_store(root, s3.settings())

    async def main() -> tuple[StoredObject, StoredObject]:
        return await store.put_bytes(b"same"), await store.put_bytes(b"same")

    first, second = anyio.run(main)
    assert first == second
    listing = s3.boto().list_objects_v2(Bucket=BUCKET, Prefix=parse_s3_root(root)[1])
    assert [o["Key"] for o in listing["Contents"]] == [key_of(root, first.uri)]


def test_a_missing_object_is_not_found(s3: S3Server, s3_client: Client, tmp_path: Path) -> None:
    store = open_artifact_store(s3.fresh_root(), s3.settings())
    with pytest.raises(NotFound, match=f"{MISSING} is missing from s3://{BUCKET}/t-"):
        anyio.run(store.get_bytes, MISSING)
    with pytest.raises(NotFound, match="is missing"):
        anyio.run(store.copy_to, MISSING, tmp_path / "never")
    assert {p.name for p in tmp_path.iterdir()} <= {"chachaml.db"}  # no file, not even a part
    with s3_client.run(experiment="s3") as run:
        art = run.log_artifact("data", b"soon gone")
    objects = s3_client.runtime.artifacts
    assert isinstance(objects, DeletableObjects)
    s3_client.runtime.call(objects.delete, art.uri)
    with pytest.raises(NotFound, match="is missing"):
        s3_client.load_artifact(run.id, "data")


def test_wrong_credentials_are_refused_with_a_clear_error(s3: S3Server) -> None:
    root = s3.fresh_root()
    good = open_artifact_store(root, s3.settings())
    obj = anyio.run(good.put_bytes, b"secret data")
    for bad in (
        s3.settings(secret_access_key="wrong"),
        s3.settings(access_key_id="AKIAUNKNOWN", secret_access_key="wrong"),
    ):
        store = open_artifact_store(root, bad)
        with pytest.raises(StoreUnavailable, match="refused the credentials") as info:
            anyio.run(store.get_bytes, obj.uri)
        assert s3.endpoint in str(info.value) and "AWS_SECRET_ACCESS_KEY" in str(info.value)
        with pytest.raises(StoreUnavailable, match="refused the credentials"):
            anyio.run(store.put_bytes, b"other")
        with pytest.raises(StoreUnavailable, match="refused the credentials"):
            anyio.run(store.check)


def test_wrong_credentials_fail_when_the_client_logs(s3: S3Server, tmp_path: Path) -> None:
    settings = make_settings(s3=s3.settings(secret_access_key="wrong"))
    client = Client(f"sqlite:///{tmp_path / 'c.db'}", s3.fresh_root(), settings=settings)
    try:
        with client.run(experiment="s3") as run, pytest.raises(StoreUnavailable, match="refused"):
            run.log_artifact("x", b"data")
    finally:
        client.close()


def test_an_unreachable_endpoint_or_missing_bucket_says_so(s3: S3Server) -> None:
    nowhere = open_artifact_store(s3.fresh_root(), s3.settings(endpoint="http://127.0.0.1:9"))
    with pytest.raises(StoreUnavailable, match="cannot reach the S3 endpoint http://127"):
        anyio.run(nowhere.get_bytes, MISSING)
    no_bucket = open_artifact_store("s3://no-such-bucket/x", s3.settings())
    with pytest.raises(StoreUnavailable, match="bucket 'no-such-bucket' does not exist"):
        anyio.run(no_bucket.check)
    with pytest.raises(StoreUnavailable, match="does not exist"):
        anyio.run(no_bucket.put_bytes, b"data")


def test_a_tampered_object_is_reported_as_corrupt(s3: S3Server, tmp_path: Path) -> None:
    root = s3.fresh_root()
    store = open_artifact_store(root, s3.settings())
    obj = anyio.run(store.put_bytes, b"original")
    s3.boto().put_object(Bucket=BUCKET, Key=key_of(root, obj.uri), Body=b"tampered")
    with pytest.raises(StoreUnavailable, match="corrupt"):
        anyio.run(store.get_bytes, obj.uri)
    with pytest.raises(StoreUnavailable, match="corrupt"):
        anyio.run(store.copy_to, obj.uri, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not anyio.run(store.contains, obj)  # the tampered copy lost its sha256 metadata


def test_check_passes_on_a_reachable_bucket(s3: S3Server) -> None:
    store = open_artifact_store(s3.fresh_root(), s3.settings())
    anyio.run(store.check)
    assert store.root.startswith(f"s3://{BUCKET}/t-")


def test_s3_roots_are_parsed_strictly() -> None:
    assert parse_s3_root("s3://bucket") == ("bucket", "")
    assert parse_s3_root("s3://bucket/a/b/") == ("bucket", "a/b")
    for bad in ("s3://", "s3:///prefix", "s3://b/a/../c", "s3://bad bucket/x"):
        with pytest.raises(InvalidInput):
            parse_s3_root(bad)
    with pytest.raises(InvalidInput, match="part size"):
        S3ArtifactStore("s3://bucket", part_size=1024)
    with pytest.raises(InvalidInput, match="s3://bucket/prefix"):
        open_artifact_store("gs://bucket/prefix")


def test_s3_settings_come_from_chachaml_then_aws_variables() -> None:
    aws = {
        "AWS_ENDPOINT_URL": "http://minio:9000",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "aws-key",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_SESSION_TOKEN": "aws-token",
    }
    from_aws = Settings.from_env(aws).s3
    assert from_aws == S3Settings(
        endpoint="http://minio:9000",
        region="eu-west-1",
        access_key_id="aws-key",
        secret_access_key="aws-secret",
        session_token="aws-token",
    )
    assert "aws-secret" not in repr(from_aws) and "aws-token" not in repr(from_aws)
    ours = Settings.from_env(
        aws
        | {
            "CHACHAML_S3_ENDPOINT": "https://s3.example",
            "CHACHAML_S3_ACCESS_KEY_ID": "mine",
            "CHACHAML_S3_SECRET_ACCESS_KEY": "my-secret",
            "CHACHAML_S3_CHECKSUM": "false",
        }
    ).s3
    assert (ours.endpoint, ours.access_key_id, ours.secret_access_key) == (
        "https://s3.example",
        "mine",
        "my-secret",
    )
    assert ours.session_token is None and ours.checksum is False
    with pytest.raises(ValueError, match="CHACHAML_S3_CHECKSUM"):
        Settings.from_env({"CHACHAML_S3_CHECKSUM": "maybe"})


def test_a_failed_credential_lookup_says_no_credentials_were_given() -> None:
    from obstore.exceptions import GenericError

    store = S3ArtifactStore("s3://bucket/x", S3Settings(endpoint="http://127.0.0.1:9"))
    lookup = GenericError("Error performing PUT http://169.254.169.254/latest/api/token: 403")
    error = store._error(lookup, None)
    assert isinstance(error, StoreUnavailable)
    assert str(error).startswith("no S3 credentials for s3://bucket/x: set CHACHAML_S3_")


def test_the_mcp_artifact_tools_read_from_s3_unchanged(s3: S3Server, tmp_path: Path) -> None:
    from mcp import Client as MCPClient
    from mcp_types import TextContent

    from chachaml.server.mcp.server import build_mcp
    from chachaml.store import open_store

    url, root = f"sqlite:///{tmp_path / 'c.db'}", s3.fresh_root()
    client = Client(url, root, settings=make_settings(s3=s3.settings()))
    try:
        with client.run(experiment="s3") as run:
            run.log_artifact("notes.txt", "trained on 4 GPUs", serializer="text")
    finally:
        client.close()

    async def main() -> list[str]:
        store = await open_store(url)
        try:
            artifacts = open_artifact_store(root, s3.settings())
            server = build_mcp(store, artifacts=artifacts, toolsets=["artifacts"])
            async with MCPClient(server) as mcp:
                result = await mcp.call_tool(
                    "read_artifact", {"run_id": run.id, "name": "notes.txt"}
                )
        finally:
            await store.close()
        assert not result.is_error, result.content
        return [b.text for b in result.content if isinstance(b, TextContent)]

    assert anyio.run(main) == ["trained on 4 GPUs"]
