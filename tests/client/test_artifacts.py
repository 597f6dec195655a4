"""Artifacts: serializers, files, tables, validation of names, content addressing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import numpy as np
import pytest

from chachaml.client.client import Client
from chachaml.errors import InvalidInput, NotFound, StoreUnavailable
from chachaml.records.runs import Table
from chachaml.store.artifacts import LocalArtifactStore, validate_artifact_name


@pytest.fixture
def store_url(tracking_store_url: str) -> str:
    """This module's ``client`` tests also run against a remote server."""
    return tracking_store_url


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value


def test_values_round_trip_with_safe_automatic_serializers(client: Client) -> None:
    with client.run(experiment="a") as run:
        json_art = client.log_artifact("config.json", {"layers": [64, 32], "dropout": 0.1})
        bytes_art = client.log_artifact("raw.bin", b"\x00\x01\x02")
        client.log_artifact("text", "plain text", serializer="text")
    assert json_art.serializer == "json" and json_art.content_type == "application/json"
    assert bytes_art.size == 3 and bytes_art.sha256 == hashlib.sha256(b"\x00\x01\x02").hexdigest()
    assert client.load_artifact(run.id, "config.json") == {"layers": [64, 32], "dropout": 0.1}
    assert client.load_artifact(run.id, "raw.bin") == b"\x00\x01\x02"
    assert client.load_artifact(run.id, "text") == "plain text"


def test_numpy_arrays_are_stored_natively(client: Client) -> None:
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    with client.run(experiment="a") as run:
        art = client.log_artifact("weights.npy", weights)
        with pytest.raises(InvalidInput, match="dtype object"):
            client.log_artifact("objects.npy", np.array([object()], dtype=object))
    assert art.serializer == "numpy"
    loaded = client.load_artifact(run.id, "weights.npy")
    assert loaded.dtype == np.float32 and (loaded == weights).all()


def test_arbitrary_objects_need_a_named_serializer_and_never_unpickle_silently(
    client: Client,
) -> None:
    with client.run(experiment="a") as run:
        with pytest.raises(InvalidInput, match="name a serializer"):
            client.log_artifact("obj", Opaque(3))
        client.log_artifact("obj", Opaque(3), serializer="pickle")
        with pytest.raises(InvalidInput, match="unknown serializer 'yaml'"):
            client.log_artifact("obj2", {}, serializer="yaml")
    with pytest.raises(InvalidInput, match="allow_pickle=True"):
        client.load_artifact(run.id, "obj")
    assert client.load_artifact(run.id, "obj", allow_pickle=True).value == 3


def test_tables_and_files(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "report.csv"
    source.write_text("a,b\n1,2\n")
    with client.run(experiment="a") as run:
        client.log_table("confusion", ["pred", "true", "n"], [["cat", "cat", 5], ["cat", "dog", 1]])
        file_art = client.log_file("reports/report.csv", source)
        with pytest.raises(InvalidInput, match="needs 3 values"):
            client.log_table("bad", ["a", "b", "c"], [[1, 2]])
        with pytest.raises(InvalidInput, match="not a file"):
            client.log_file("missing", tmp_path / "nope.csv")
    table = client.load_artifact(run.id, "confusion")
    assert table == Table(
        headers=["pred", "true", "n"], rows=[["cat", "cat", 5], ["cat", "dog", 1]]
    )
    assert file_art.content_type == "text/csv" and file_art.serializer == "file"
    assert client.load_artifact(run.id, "reports/report.csv") == b"a,b\n1,2\n"
    names = [a.name for a in client.list_artifacts(run.id)]
    assert names == ["confusion", "reports/report.csv"]


@pytest.mark.parametrize(
    "name",
    [
        "../escape",
        "a/../../b",
        "/etc/passwd",
        "a\x00b",
        "",
        "a//b",
        "./a",
        "C:\\x",
        "a\\b",
        "x" * 2000,
    ],
)
def test_unsafe_artifact_names_are_refused(client: Client, name: str) -> None:
    with client.run(experiment="a"), pytest.raises(InvalidInput, match="artifact name"):
        client.log_artifact(name, b"x")


def test_safe_names_pass_validation() -> None:
    for name in ("model.pkl", "plots/loss.png", "a b/c-d_e.txt", "..hidden", "v1..2"):
        assert validate_artifact_name(name) == name


def test_missing_artifact_error_lists_the_runs_artifacts(client: Client) -> None:
    with client.run(experiment="a") as run:
        client.log_artifact("model.bin", b"m")
        client.log_artifact("metrics.json", {"a": 1})
    with pytest.raises(NotFound, match=r"no artifact 'weights'.*metrics\.json, model\.bin"):
        client.load_artifact(run.id, "weights")
    with pytest.raises(NotFound, match="not found"):
        client.list_artifacts("no-such-run")


def test_identical_content_is_stored_once(client: Client, tmp_path: Path) -> None:
    with client.run(experiment="a"):
        first = client.log_artifact("one", b"same")
        second = client.log_artifact("two", b"same")
    assert first.uri == second.uri
    objects = [p for p in (tmp_path / "artifacts" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 1


def test_a_tampered_object_is_detected_on_load(client: Client, tmp_path: Path) -> None:
    with client.run(experiment="a") as run:
        art = client.log_artifact("data", b"original")
    (tmp_path / "artifacts" / art.uri).write_bytes(b"tampered")
    with pytest.raises(StoreUnavailable, match="corrupt"):
        client.load_artifact(run.id, "data")


def test_local_store_refuses_uris_outside_its_layout(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)

    async def main() -> None:
        with pytest.raises(InvalidInput, match="not an artifact object URI"):
            await store.get_bytes("../../etc/passwd")
        with pytest.raises(NotFound, match="missing"):
            await store.get_bytes("objects/ab/" + "c" * 62)
        obj = await store.put_bytes(b"hello")
        assert await store.get_bytes(obj.uri) == b"hello"
        await store.delete(obj.uri)
        await store.delete(obj.uri)  # deleting twice is fine

    anyio.run(main)


def test_pickle_artifacts_record_their_serializer(client: Client) -> None:
    with client.run(experiment="a") as run:
        art = client.log_artifact("obj", {"k": Opaque(1)}, serializer="pickle")
    assert art.serializer == "pickle" and art.content_type == "application/x-pickle"
    assert client.load_artifact(run.id, "obj", allow_pickle=True)["k"].value == 1
