"""The registry part of the Store contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import hashlib
import time

import anyio
import pytest

from chachaml.errors import Conflict, NotFound
from chachaml.records.registry import NewModelVersion, Stage
from chachaml.records.runs import ArtifactRecord, NewRun
from chachaml.store import Store, open_store
from chachaml.store.artifacts import object_uri
from chachaml.store.codec import make_chunk
from tests.support.remote_server import stored_object

pytestmark = [pytest.mark.anyio, pytest.mark.contract]


async def make_run(store: Store, run_id: str, artifacts: dict[str, str] | None = None) -> None:
    """A run with artifacts (name to content)."""
    await store.create_run(
        NewRun(
            id=run_id,
            experiment="exp",
            name=run_id,
            created_by="alice",
            started_at=time.time(),
            heartbeat_timeout=60.0,
        )
    )
    for name, content in (artifacts or {"model": "a"}).items():
        await add_artifact(store, run_id, name, content)


def digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


async def add_artifact(store: Store, run_id: str, name: str, content: str) -> None:
    obj = await stored_object(store, content.encode())
    await store.add_artifact(
        ArtifactRecord(
            run_id=run_id,
            name=name,
            content_type="application/octet-stream",
            serializer="bytes",
            size=obj.size,
            sha256=obj.sha256,
            uri=obj.uri,
            created_at=time.time(),
        )
    )


async def register(
    store: Store,
    run_id: str,
    model: str = "m",
    stage: Stage = "none",
    tags: dict[str, str] | None = None,
) -> int:
    new = NewModelVersion(
        model=model,
        run_id=run_id,
        artifact="model",
        stage=stage,
        created_by="alice",
        tags=tags or {},
    )
    return (await store.register_model_version(new)).version


async def production_versions(store: Store, model: str = "m") -> list[int]:
    return [v.version for v in await store.list_model_versions(model, "production")]


async def test_versions_are_numbered_from_one_and_copy_the_artifact(store: Store) -> None:
    await make_run(store, "r1", {"model": "a"})
    first = await store.register_model_version(
        NewModelVersion(
            model="m",
            run_id="r1",
            artifact="model",
            created_by="alice",
            description="baseline",
            tags={"team": "ml"},
        )
    )
    assert (first.model, first.version, first.stage, first.run_id) == ("m", 1, "none", "r1")
    assert (first.sha256, first.artifact_uri) == (digest("a"), object_uri(digest("a")))
    assert (first.description, first.created_by, first.tags) == (
        "baseline",
        "alice",
        {"team": "ml"},
    )
    assert await register(store, "r1") == 2


async def test_relogging_an_artifact_does_not_change_a_registered_version(store: Store) -> None:
    await make_run(store, "r1", {"model": "a"})
    await register(store, "r1")
    await add_artifact(store, "r1", "model", "b")
    assert (await store.get_model_version("m", 1)).sha256 == digest("a")


async def test_versions_carry_the_source_runs_latest_metrics(store: Store) -> None:
    await make_run(store, "r1")
    now = time.time()
    await store.log_metrics([make_chunk("r1", "acc", [(0, 0.5, now), (1, 0.9, now)])])
    await register(store, "r1")
    assert (await store.get_model_version("m", 1)).metrics == {"acc": 0.9}


async def test_registering_a_missing_artifact_lists_the_runs_artifacts(store: Store) -> None:
    await make_run(store, "r1", {"weights": "a", "config": "b"})
    with pytest.raises(NotFound, match=r"no artifact 'model' \(its artifacts: config, weights\)"):
        await register(store, "r1")
    assert await store.list_models() == []


async def test_registering_from_a_missing_or_archived_run_fails(store: Store) -> None:
    with pytest.raises(NotFound, match="run 'nope' not found"):
        await register(store, "nope")
    await make_run(store, "r1")
    await store.end_run("r1", "completed", None, time.time())
    assert await store.archive_runs(time.time() + 1, None) == 1
    with pytest.raises(Conflict, match="archived"):
        await register(store, "r1")
    assert await store.list_models() == []


async def test_runs_with_registered_versions_are_never_archived(store: Store) -> None:
    await make_run(store, "r1")
    await make_run(store, "r2")
    for rid in ("r1", "r2"):
        await store.end_run(rid, "completed", None, time.time())
    await register(store, "r1")
    assert await store.archive_runs(time.time() + 1, None) == 1
    assert await store.delete_archived() == (1, [])
    assert (await store.get_run("r1")).archived is False


async def test_registering_into_production_archives_the_previous_one(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", stage="production")
    await register(store, "r1", stage="production")
    assert await production_versions(store) == [2]
    assert (await store.get_model_version("m", 1)).stage == "archived"


async def test_promotion_to_production_archives_the_previous_production_version(
    store: Store,
) -> None:
    await make_run(store, "r1")
    for _ in range(3):
        await register(store, "r1")
    await store.promote_model_version("m", 1, "production", "alice")
    await store.promote_model_version("m", 2, "staging", "bob")
    promoted = await store.promote_model_version("m", 3, "production", "carol", "better f1")
    assert promoted.stage == "production"
    stages = {v.version: v.stage for v in await store.list_model_versions("m")}
    assert stages == {1: "archived", 2: "staging", 3: "production"}
    detail = await store.get_model("m")
    assert detail.production_version == 3
    changes = [(e.version, e.old, e.new, e.user, e.reason) for e in detail.history]
    assert changes == [
        (1, None, "none", "alice", "registered"),
        (2, None, "none", "alice", "registered"),
        (3, None, "none", "alice", "registered"),
        (1, "none", "production", "alice", None),
        (2, "none", "staging", "bob", None),
        (1, "production", "archived", "carol", "version 3 was promoted to production"),
        (3, "none", "production", "carol", "better f1"),
    ]


async def test_promoting_to_the_current_stage_records_nothing(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", stage="staging")
    await store.promote_model_version("m", 1, "staging", "bob")
    assert len((await store.get_model("m")).history) == 1


async def test_promoting_a_missing_version_changes_nothing(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", stage="production")
    before = await store.get_model("m")
    with pytest.raises(NotFound, match=r"model 'm' has no version 7 \(its versions: 1\)"):
        await store.promote_model_version("m", 7, "production", "alice")
    with pytest.raises(NotFound, match=r"model 'other' not found \(registered models: m\)"):
        await store.promote_model_version("other", 1, "production", "alice")
    assert await store.get_model("m") == before


async def test_concurrent_promotions_on_two_connections_leave_one_production_version(
    store: Store, store_url: str
) -> None:
    await make_run(store, "r1")
    for _ in range(6):
        await register(store, "r1")
    other = await open_store(store_url)
    try:
        async with anyio.create_task_group() as tg:
            for version in range(1, 7):
                target = store if version % 2 else other
                tg.start_soon(target.promote_model_version, "m", version, "production", "x")
    finally:
        await other.close()
    assert len(await production_versions(store)) == 1
    stages = sorted(v.stage for v in await store.list_model_versions("m"))
    assert stages == ["archived"] * 5 + ["production"]


async def test_aliases_point_at_versions_and_their_moves_are_audited(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1")
    await register(store, "r1")
    await store.set_model_alias("m", "champion", 1, "alice")
    await store.set_model_alias("m", "challenger", 2, "alice")
    await store.set_model_alias("m", "champion", 2, "bob")
    await store.set_model_alias("m", "champion", 2, "bob")  # no change, no event
    versions = {v.version: v.aliases for v in await store.list_model_versions("m")}
    assert versions == {1: [], 2: ["challenger", "champion"]}
    await store.delete_model_alias("m", "challenger", "carol")
    detail = await store.get_model("m")
    assert detail.aliases == {"champion": 2}
    moves = [(e.alias, e.old, e.new, e.user) for e in detail.history if e.kind == "alias"]
    assert moves == [
        ("champion", None, "1", "alice"),
        ("challenger", None, "2", "alice"),
        ("champion", "1", "2", "bob"),
        ("challenger", "2", None, "carol"),
    ]


async def test_alias_errors_name_what_exists(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1")
    await store.set_model_alias("m", "champion", 1, "alice")
    with pytest.raises(NotFound, match=r"no version 3 \(its versions: 1\)"):
        await store.set_model_alias("m", "champion", 3, "alice")
    with pytest.raises(NotFound, match=r"no alias 'gold' \(its aliases: champion\)"):
        await store.delete_model_alias("m", "gold", "alice")
    assert (await store.get_model("m")).aliases == {"champion": 1}


async def test_model_and_version_tags_and_note(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", tags={"a": "1"})
    await store.set_model_tags("m", {"team": "ml", "task": "iris"})
    await store.set_model_tags("m", {"team": "core"})
    await store.set_model_version_tags("m", 1, {"a": "2", "b": "3"})
    await store.set_model_note("m", "# Iris\nthe classifier")
    detail = await store.get_model("m")
    assert detail.tags == {"task": "iris", "team": "core"}
    assert detail.versions[0].tags == {"a": "2", "b": "3"}
    assert detail.note == "# Iris\nthe classifier"
    with pytest.raises(NotFound, match="model 'x' not found"):
        await store.set_model_note("x", "note")
    with pytest.raises(NotFound, match="no version 2"):
        await store.set_model_version_tags("m", 2, {"a": "1"})


async def test_models_are_listed_with_latest_and_production_versions(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", model="a", stage="production")
    await register(store, "r1", model="a")
    await register(store, "r1", model="b")
    listed = {m.name: m for m in await store.list_models()}
    assert set(listed) == {"a", "b"}
    assert (listed["a"].version_count, listed["a"].latest_version) == (2, 2)
    assert (listed["a"].production_version, listed["b"].production_version) == (1, None)
    assert [v.version for v in (await store.get_model("a")).versions] == [2, 1]


async def test_missing_models_and_versions_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match=r"registered models: none"):
        await store.get_model("m")
    with pytest.raises(NotFound, match="model 'm' not found"):
        await store.list_model_versions("m")
    await make_run(store, "r1")
    await register(store, "r1")
    with pytest.raises(NotFound, match=r"no version 2 \(its versions: 1\)"):
        await store.get_model_version("m", 2)


async def test_a_model_is_created_empty_and_its_name_is_unique(store: Store) -> None:
    made = await store.create_model("m", "alice", "# M", {"team": "ml"})
    assert (made.name, made.created_by, made.note, made.tags) == (
        "m",
        "alice",
        "# M",
        {"team": "ml"},
    )
    assert (made.version_count, made.versions, made.latest_version) == (0, [], None)
    with pytest.raises(Conflict, match="model 'm' already exists"):
        await store.create_model("m", "bob")
    await make_run(store, "r1")
    assert await register(store, "r1") == 1  # registering into the created model
    assert (await store.get_model("m")).created_by == "alice"


async def test_renaming_a_model_keeps_everything_under_the_new_name(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", stage="production")
    await store.set_model_alias("m", "champion", 1, "alice")
    await store.create_model("taken", "alice")
    with pytest.raises(Conflict, match="model 'taken' already exists"):
        await store.rename_model("m", "taken")
    await store.rename_model("m", "renamed")
    moved = await store.get_model("renamed")
    assert (moved.production_version, moved.aliases) == (1, {"champion": 1})
    assert {e.model for e in moved.history} == {"renamed"}
    with pytest.raises(NotFound, match="model 'm' not found"):
        await store.get_model("m")


async def test_deleting_a_model_deletes_its_versions_and_frees_its_runs(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", tags={"a": "1"})
    await store.set_model_alias("m", "champion", 1, "alice")
    await store.set_model_tags("m", {"team": "ml"})
    await store.delete_model("m")
    assert await store.list_models() == []
    with pytest.raises(NotFound, match="model 'm' not found"):
        await store.delete_model("m")
    await store.end_run("r1", "completed", None, time.time())
    assert await store.archive_runs(time.time() + 1, None) == 1  # no version holds it now
    await make_run(store, "r2")
    assert await register(store, "r2") == 1  # a new model of that name starts again


async def test_deleting_a_version_removes_it_and_its_number_is_never_reused(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1")
    await register(store, "r1", tags={"a": "1"})
    await store.set_model_alias("m", "champion", 2, "alice")
    await store.delete_model_version("m", 2)
    with pytest.raises(NotFound, match=r"no version 2 \(its versions: 1\)"):
        await store.delete_model_version("m", 2)
    detail = await store.get_model("m")
    assert ([v.version for v in detail.versions], detail.aliases) == ([1], {})
    assert await register(store, "r1") == 3


async def test_version_descriptions_and_tags_are_replaced_and_deleted(store: Store) -> None:
    await make_run(store, "r1")
    await register(store, "r1", tags={"a": "1", "b": "2"})
    await store.set_model_tags("m", {"team": "ml", "task": "iris"})
    await store.set_model_version_description("m", 1, "the baseline")
    assert (await store.get_model_version("m", 1)).description == "the baseline"
    await store.set_model_version_description("m", 1, None)
    assert (await store.get_model_version("m", 1)).description is None
    await store.delete_model_version_tags("m", 1, ["a", "never-set"])
    await store.delete_model_tags("m", ["team"])
    detail = await store.get_model("m")
    assert (detail.tags, detail.versions[0].tags) == ({"task": "iris"}, {"b": "2"})
    with pytest.raises(NotFound, match="no version 5"):
        await store.set_model_version_description("m", 5, "x")
    with pytest.raises(NotFound, match="model 'x' not found"):
        await store.delete_model_tags("x", ["a"])


async def test_archive_existing_archives_the_other_versions_in_the_stage(store: Store) -> None:
    await make_run(store, "r1")
    for stage in ("staging", "staging", "none", "production"):
        await register(store, "r1", stage=stage)
    await store.promote_model_version("m", 3, "staging", "bob", archive_existing=True)
    stages = {v.version: v.stage for v in await store.list_model_versions("m")}
    assert stages == {1: "archived", 2: "archived", 3: "staging", 4: "production"}
    reasons = [e.reason for e in (await store.get_model("m")).history[-3:]]
    assert reasons == ["version 3 entered staging", "version 3 entered staging", None]


async def test_a_version_from_an_mlflow_source_records_it_without_an_artifact(
    store: Store,
) -> None:
    await make_run(store, "r1", {})
    source = "mlflow-artifacts:/1/r1/artifacts/model"
    new = NewModelVersion(
        model="m", run_id="r1", artifact="model", created_by="alice", source=source
    )
    made = await store.register_model_version(new)
    assert (made.artifact, made.artifact_uri, made.serializer) == ("model", source, "mlflow")
    assert (made.sha256, made.size) == ("", 0)
