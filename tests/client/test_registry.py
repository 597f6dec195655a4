"""The registry API (chachaml.client.registry and its operations) against real stores.

Promotions racing from two processes: :mod:`tests.e2e.test_registry`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import chachaml
from chachaml.client.client import Client
from chachaml.client.registry import Registry
from chachaml.errors import InvalidInput, NoActiveRun, NotFound, StoreUnavailable
from chachaml.store import open_store
from chachaml.tools import registry as ops
from tests.conftest import REMOTE_TOKEN, make_settings, remote_transport


@pytest.fixture
def store_url(tracking_store_url: str) -> str:
    """This module's ``client`` tests also run against a server (in this process)."""
    return tracking_store_url


@pytest.fixture
def registry(client: Client) -> Registry:
    return Registry(client)


def new_version(
    client: Client,
    registry: Registry,
    value: object = "weights-1",
    stage: str = "none",
    *,
    model: str = "m",
    metrics: dict[str, float] | None = None,
    params: dict[str, object] | None = None,
) -> int:
    """A run that logs an artifact ``model`` (and metrics/params), registered as a version."""
    with client.start_run("exp", params=params):
        client.log_artifact("model", value)
        client.log_metrics(metrics or {})
        return registry.register_model(model, stage=stage).version


def test_register_numbers_versions_and_records_who_and_where(
    client: Client, registry: Registry
) -> None:
    with client.start_run("exp") as run:
        client.log_artifact("model", {"w": [1, 2]})
        client.log_metric("acc", 0.9)
        first = registry.register_model("m", description="baseline", tags={"team": "ml"})
        second = registry.register_model("m", artifact="model", run_id=run.id)
    assert (first.version, second.version) == (1, 2)
    assert (first.run_id, first.created_by, first.stage) == (run.id, "tester", "none")
    assert (first.description, first.tags, first.metrics) == (
        "baseline",
        {"team": "ml"},
        {"acc": 0.9},
    )
    assert first.serializer == "json"


def test_register_needs_a_run(registry: Registry) -> None:
    with pytest.raises(NoActiveRun, match="run_id"):
        registry.register_model("m")


def test_a_missing_artifact_lists_the_runs_artifacts(client: Client, registry: Registry) -> None:
    with client.start_run("exp"):
        client.log_artifact("weights", b"x")
        client.log_artifact("config", {"a": 1})
        with pytest.raises(
            NotFound, match=r"no artifact 'model' \(its artifacts: config, weights\)$"
        ):
            registry.register_model("m")
    assert registry.models() == []


@pytest.mark.parametrize(
    "path", ["/tmp/model.pkl", "./model", "../out/model", "~/m", "C:\\m\\model", "model.joblib"]
)
def test_a_file_path_instead_of_an_artifact_name_is_pointed_out(
    client: Client, registry: Registry, path: str
) -> None:
    with client.start_run("exp"):
        client.log_artifact("weights", b"x")
        with pytest.raises(NotFound, match=r"its artifacts: weights\); .* looks like a file path"):
            registry.register_model("m", artifact=path)


def test_a_plain_missing_name_gets_no_file_path_hint(client: Client, registry: Registry) -> None:
    with client.start_run("exp"), pytest.raises(NotFound) as err:
        registry.register_model("m", artifact="weights")
    assert "file path" not in str(err.value)
    assert "its artifacts: none" in str(err.value)


def test_promoting_to_production_archives_the_previous_production_version(
    client: Client, registry: Registry
) -> None:
    for _ in range(3):
        new_version(client, registry)
    registry.promote("m", 1, "production")
    registry.promote("m", 2, "staging")
    promoted = registry.promote("m", 3, "production", reason="better")
    assert promoted.stage == "production"
    assert [(v.version, v.stage) for v in registry.model_versions("m")] == [
        (3, "production"),
        (2, "staging"),
        (1, "archived"),
    ]
    assert [v.version for v in registry.model_versions("m", stage="archived")] == [1]


def test_promoting_a_missing_version_is_an_error_and_changes_nothing(
    client: Client, registry: Registry
) -> None:
    new_version(client, registry, stage="production")
    before = registry.model("m")
    with pytest.raises(NotFound, match=r"model 'm' has no version 5 \(its versions: 1\)"):
        registry.promote("m", 5, "production")
    with pytest.raises(NotFound, match=r"model 'nope' not found \(registered models: m\)"):
        registry.promote("nope", 1, "production")
    assert registry.model("m") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("m", 1, "prod"), "stage must be one of none, staging, production, archived; got 'prod'"),
        (("m", 0, "staging"), "version must be a positive integer"),
        (("m", "1", "staging"), "version must be a positive integer"),
        (("m", True, "staging"), "version must be a positive integer"),
        (("", 1, "staging"), "model_name must be a non-empty string"),
    ],
)
def test_bad_promotion_arguments_are_named(
    client: Client, registry: Registry, args: tuple[object, object, object], message: str
) -> None:
    new_version(client, registry)
    with pytest.raises(InvalidInput, match=message):
        registry.promote(*args)  # type: ignore[arg-type]


def test_concurrent_promotions_from_threads_leave_one_production_version(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    transport = remote_transport(request, store_url)
    token = None if transport is None else REMOTE_TOKEN
    clients = [
        Client(
            store=store_url,
            artifacts=str(tmp_path / "a"),
            settings=make_settings(token=token),
            transport=transport,
        )
        for _ in range(6)
    ]
    try:
        first = Registry(clients[0])
        for _ in range(6):
            new_version(clients[0], first)
        barrier = threading.Barrier(len(clients))
        errors: list[BaseException] = []

        def promote(version: int) -> None:
            try:
                reg = Registry(clients[version - 1])
                reg.models()  # start the client's runtime before the race
                barrier.wait()
                for _ in range(5):
                    reg.promote("m", version, "production")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=promote, args=(v,)) for v in range(1, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        stages = [v.stage for v in first.model_versions("m")]
        assert stages.count("production") == 1
        assert stages.count("archived") == 5
    finally:
        for c in clients:
            c.close()


def test_load_model_by_stage_alias_and_version(client: Client, registry: Registry) -> None:
    new_version(client, registry, {"v": 1}, stage="production")
    new_version(client, registry, {"v": 2}, stage="staging")
    new_version(client, registry, {"v": 3})
    registry.set_alias("m", "champion", 3)
    assert registry.load_model("m") == {"v": 1}
    assert registry.load_model("m", stage="staging") == {"v": 2}
    assert registry.load_model("m", alias="champion") == {"v": 3}
    assert registry.load_model("m", version=2) == {"v": 2}
    assert registry.model_version("m").version == 1
    assert registry.model_version("m", alias="champion").version == 3


def test_load_model_errors_say_what_exists(client: Client, registry: Registry) -> None:
    new_version(client, registry)
    new_version(client, registry, stage="staging")
    with pytest.raises(
        NotFound,
        match=r"no version in stage 'production' \(its versions: 2 \(staging\), 1 \(none\)\)",
    ):
        registry.load_model("m")
    with pytest.raises(NotFound, match=r"no alias 'gold' \(its aliases: none\)"):
        registry.load_model("m", alias="gold")
    with pytest.raises(InvalidInput, match="at most one of version, stage or alias"):
        registry.load_model("m", version=1, alias="gold")


def test_pickled_models_load_only_when_pickle_is_allowed(
    client: Client, registry: Registry
) -> None:
    with client.start_run("exp"):
        client.log_artifact("model", {1, 2, 3}, serializer="pickle")
        registry.register_model("m", stage="production")
    with pytest.raises(InvalidInput, match="allow_pickle=True"):
        registry.load_model("m")
    assert registry.load_model("m", allow_pickle=True) == {1, 2, 3}


def test_a_tampered_model_file_is_refused(
    client: Client, registry: Registry, tmp_path: Path
) -> None:
    new_version(client, registry, b"original bytes", stage="production")
    uri = registry.model_version("m").artifact_uri
    (tmp_path / "artifacts" / uri).write_bytes(b"tampered bytes")
    with pytest.raises(StoreUnavailable, match="version 1 of model 'm' is corrupt"):
        registry.load_model("m")


def test_a_registered_version_keeps_its_bytes_when_the_artifact_is_relogged(
    client: Client, registry: Registry
) -> None:
    with client.start_run("exp"):
        client.log_artifact("model", [1])
        registry.register_model("m", stage="production")
        client.log_artifact("model", [2])
        registry.register_model("m")
    assert registry.load_model("m") == [1]
    assert registry.load_model("m", version=2) == [2]


def test_runs_behind_registered_versions_survive_cleanup(
    client: Client, registry: Registry
) -> None:
    new_version(client, registry, [1], stage="production")
    with client.start_run("exp"):
        client.log_artifact("scratch", [0])
    assert client.archive_runs(older_than_days=0) == 1
    assert client.delete_archived() == 1
    assert registry.load_model("m") == [1]


def test_aliases_move_and_every_change_is_audited(client: Client, registry: Registry) -> None:
    new_version(client, registry)
    new_version(client, registry)
    assert registry.set_alias("m", "champion", 1).aliases == ["champion"]
    registry.set_alias("m", "challenger", 2)
    registry.set_alias("m", "champion", 2)
    registry.delete_alias("m", "challenger")
    detail = registry.model("m")
    assert detail.aliases == {"champion": 2}
    assert [(e.kind, e.version, e.alias, e.old, e.new, e.user) for e in detail.history] == [
        ("stage", 1, None, None, "none", "tester"),
        ("stage", 2, None, None, "none", "tester"),
        ("alias", 1, "champion", None, "1", "tester"),
        ("alias", 2, "challenger", None, "2", "tester"),
        ("alias", 2, "champion", "1", "2", "tester"),
        ("alias", 2, "challenger", "2", None, "tester"),
    ]
    assert all(e.at.tzinfo is not None for e in detail.history)


@pytest.mark.parametrize("alias", ["", "1st", "production", "has space", "x" * 101])
def test_bad_aliases_are_refused(client: Client, registry: Registry, alias: str) -> None:
    new_version(client, registry)
    with pytest.raises(InvalidInput, match="alias"):
        registry.set_alias("m", alias, 1)


def test_model_and_version_tags_and_note(client: Client, registry: Registry) -> None:
    new_version(client, registry)
    assert registry.set_model_tag("m", "team", "ml") == {"team": "ml"}
    assert registry.set_model_version_tag("m", 1, "validated", "yes") == {"validated": "yes"}
    detail = registry.set_model_note("m", "# Notes\nworks")
    assert (detail.note, detail.tags) == ("# Notes\nworks", {"team": "ml"})
    assert detail.versions[0].tags == {"validated": "yes"}
    with pytest.raises(InvalidInput, match="markdown must be a string"):
        registry.set_model_note("m", 3)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no version 9"):
        registry.set_model_version_tag("m", 9, "a", "b")


def test_models_and_version_history(client: Client, registry: Registry) -> None:
    new_version(client, registry, metrics={"acc": 0.8}, stage="production")
    new_version(client, registry, metrics={"acc": 0.9}, model="other")
    listed = {m.name: m for m in registry.models()}
    assert set(listed) == {"m", "other"}
    assert (listed["m"].production_version, listed["other"].latest_version) == (1, 1)
    (version,) = registry.model_versions("m")
    assert (version.stage, version.created_by, version.metrics) == (
        "production",
        "tester",
        {"acc": 0.8},
    )
    assert client.get_run(version.run_id).experiment == "exp"


def test_diff_versions_reports_params_metrics_artifact_and_datasets(
    client: Client, registry: Registry
) -> None:
    with client.start_run("exp", params={"lr": 0.1, "depth": 3, "old": "x"}):
        client.log_metrics({"acc": 0.8, "loss": 0.5})
        client.log_dataset("train", name="iris", n_rows=100, n_cols=4)
        client.log_artifact("model", [1])
        registry.register_model("m")
    with client.start_run("exp", params={"lr": 0.01, "depth": 3, "new": True}):
        client.log_metrics({"acc": 0.9})
        client.log_dataset("train", name="iris", n_rows=150, n_cols=4)
        client.log_dataset("eval", name="holdout")
        client.log_artifact("model", [2])
        registry.register_model("m")
    diff = registry.diff_versions("m", 1, 2)
    assert {k: (c.v1, c.v2, c.in_v1, c.in_v2) for k, c in diff.params.items()} == {
        "lr": (0.1, 0.01, True, True),
        "new": (None, True, False, True),
        "old": ("x", None, True, False),
    }
    assert diff.metrics["acc"].delta == pytest.approx(0.1)
    assert (diff.metrics["loss"].v1, diff.metrics["loss"].v2, diff.metrics["loss"].delta) == (
        0.5,
        None,
        None,
    )
    assert diff.artifact_changed and not diff.same_run
    assert [(d.role, d.field, d.v1, d.v2) for d in diff.datasets] == [
        ("eval", "presence", "absent", "present"),
        ("train", "n_rows", 100, 150),
    ]
    same = registry.diff_versions("m", 1, 1)
    assert (same.params, same.datasets, same.artifact_changed) == ({}, [], False)
    with pytest.raises(InvalidInput, match="v2 must be a positive integer"):
        registry.diff_versions("m", 1, 0)


@pytest.mark.anyio
@pytest.mark.database_url
async def test_operations_resolve_versions_for_every_client(
    client: Client, registry: Registry, store_url: str
) -> None:
    new_version(client, registry, stage="production")
    new_version(client, registry, stage="staging")
    registry.set_alias("m", "champion", 2)
    client.close()
    store = await open_store(store_url)
    try:
        assert (await ops.get_model_version(store, "m")).version == 1
        assert (await ops.get_model_version(store, "m", stage="staging")).version == 2
        assert (await ops.get_model_version(store, "m", alias="champion")).version == 2
        assert (await ops.get_model_version(store, "m", version=1)).stage == "production"
        promoted = await ops.promote(store, "m", 2, "production", "agent")
        assert promoted.stage == "production"
        assert (await ops.get_model(store, "m")).history[-1].user == "agent"
        with pytest.raises(InvalidInput, match="user must be a non-empty string"):
            await ops.promote(store, "m", 1, "production", "")
    finally:
        await store.close()


def test_the_module_level_api_uses_the_default_client() -> None:
    assert Registry().client is chachaml.default_client()
    assert chachaml.load_model.__self__.client is chachaml.default_client()  # type: ignore[attr-defined]
    assert {"register_model", "promote", "set_alias", "load_model"} <= set(chachaml.__all__)
