"""Experiments on every backend: by id, renamed, archived with their runs, restored, tagged.

Names are read from the database every time (no per-process cache), so a second store
opened on the same database sees a rename at once: two server replicas on one PostgreSQL.
"""

from __future__ import annotations

import time

import pytest

from chachaml.errors import Conflict, NotFound
from chachaml.records.alerts import NewAlert
from chachaml.records.runs import NewRun, RunQuery
from chachaml.store import ServerStore, open_store

pytestmark = [pytest.mark.anyio, pytest.mark.contract, pytest.mark.server_store]


def new_run(run_id: str, experiment: str) -> NewRun:
    return NewRun(id=run_id, experiment=experiment, name=None, created_by="ada",
                  started_at=time.time(), heartbeat_timeout=60.0)  # fmt: skip


async def test_an_experiment_is_found_by_id_with_its_tags(store: ServerStore) -> None:
    exp = await store.create_experiment("vision", "cats and dogs")
    await store.set_experiment_tag(exp.id, "team", "cv")
    await store.set_experiment_tag(exp.id, "team", "vision")  # overwritten
    found = await store.get_experiment_by_id(exp.id)
    assert (found.name, found.description, found.tags) == ("vision", "cats and dogs",
                                                          {"team": "vision"})  # fmt: skip
    assert (await store.get_experiment("vision")).tags == {"team": "vision"}
    assert [e.tags for e in await store.list_experiments()] == [{"team": "vision"}]
    await store.delete_experiment_tag(exp.id, "team")
    assert (await store.get_experiment_by_id(exp.id)).tags == {}
    with pytest.raises(NotFound, match="no tag 'team'"):
        await store.delete_experiment_tag(exp.id, "team")
    with pytest.raises(NotFound, match="12345"):
        await store.get_experiment_by_id(12345)


async def test_a_renamed_experiment_keeps_its_id_runs_and_alert_rules(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1", "old-name"))
    exp = await store.get_experiment("old-name")
    await store.set_alert(
        NewAlert(name="low", kind="threshold", experiment="old-name", metric_key="acc", op="<",
                 threshold=0.5, created_by="ada")
    )  # fmt: skip
    await store.rename_experiment(exp.id, "new-name")
    assert (await store.get_experiment_by_id(exp.id)).name == "new-name"
    with pytest.raises(NotFound):
        await store.get_experiment("old-name")
    assert (await store.get_run("r1")).experiment == "new-name"
    assert [r.id for r in await store.query_runs(RunQuery(experiment="new-name"))] == ["r1"]
    assert await store.query_runs(RunQuery(experiment="old-name")) == []
    assert (await store.get_alert("low")).experiment == "new-name"
    await store.create_run(new_run("r2", "old-name"))  # the old name is free: a new experiment
    assert (await store.get_experiment("old-name")).id != exp.id
    with pytest.raises(Conflict, match="old-name"):
        await store.rename_experiment(exp.id, "old-name")
    with pytest.raises(NotFound):
        await store.rename_experiment(12345, "x")


async def test_archiving_an_experiment_archives_its_runs_and_restoring_brings_both_back(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1", "gone"))
    await store.create_run(new_run("r2", "gone"))
    await store.create_run(new_run("r3", "kept"))
    exp = await store.get_experiment("gone")
    await store.set_experiment_archived(exp.id, True)
    assert [e.name for e in await store.list_experiments()] == ["kept"]
    assert [e.name for e in await store.list_archived_experiments()] == ["gone"]
    kept = (await store.get_experiment("kept")).id
    assert await store.experiment_names() == {kept: "kept"}  # the picker's names: no archived
    assert (await store.get_experiment("gone")).archived  # still found by name and id
    assert (await store.get_experiment_by_id(exp.id)).archived
    assert [r.id for r in await store.query_runs(RunQuery())] == ["r3"]
    archived = await store.query_runs(RunQuery(only_archived=True))
    assert sorted(r.id for r in archived) == ["r1", "r2"]
    with pytest.raises(Conflict, match="archived"):  # an archived experiment keeps its name
        await store.rename_experiment((await store.get_experiment("kept")).id, "gone")
    await store.set_experiment_archived(exp.id, False)
    assert sorted(e.name for e in await store.list_experiments()) == ["gone", "kept"]
    assert await store.experiment_names() == {kept: "kept", exp.id: "gone"}
    assert await store.list_archived_experiments() == []
    assert len(await store.query_runs(RunQuery())) == 3


async def test_another_store_on_the_same_database_sees_a_rename_at_once(
    store_url: str,
) -> None:
    one, two = await open_store(store_url), await open_store(store_url)
    assert isinstance(one, ServerStore) and isinstance(two, ServerStore)
    try:
        await one.create_run(new_run("r1", "before"))
        # the second store reads the experiment first, as a replica serving a listing would
        assert [r.experiment for r in await two.query_runs(RunQuery(experiment="before"))] == [
            "before"
        ]
        exp = await one.get_experiment("before")
        await one.rename_experiment(exp.id, "after")
        assert await two.query_runs(RunQuery(experiment="before")) == []
        listed = await two.query_runs(RunQuery(experiment="after"))
        assert [(r.id, r.experiment) for r in listed] == [("r1", "after")]
        assert (await two.get_run("r1")).experiment == "after"
        await one.create_run(new_run("r2", "before"))  # the freed name, a new experiment
        assert [r.id for r in await two.query_runs(RunQuery(experiment="before"))] == ["r2"]
    finally:
        await one.close()
        await two.close()
