"""The Store contract of the Runs table's queries (nesting, substrings, param order), on
every backend in conftest.BACKENDS (SQLite, PostgreSQL and the remote store)."""

from __future__ import annotations

import time

import pytest

from chachaml.records.runs import NewRun, ParamValue, RunQuery
from chachaml.store import Store

pytestmark = [pytest.mark.anyio, pytest.mark.contract]


def new_run(
    run_id: str,
    experiment: str = "exp",
    *,
    name: str | None = None,
    parent_id: str | None = None,
    started_at: float | None = None,
) -> NewRun:
    return NewRun(
        id=run_id,
        experiment=experiment,
        name=name,
        created_by="alice",
        started_at=time.time() if started_at is None else started_at,
        parent_id=parent_id,
        heartbeat_timeout=60.0,
    )


async def found(store: Store, **fields: object) -> list[str]:
    return [r.id for r in await store.query_runs(RunQuery(**fields))]  # type: ignore[arg-type]


async def test_top_level_runs_count_their_children_and_list_them_by_parent(store: Store) -> None:
    t0 = time.time() - 100
    await store.create_run(new_run("p1", started_at=t0))
    await store.create_run(new_run("p2", started_at=t0 + 1))
    await store.create_run(new_run("lone", started_at=t0 + 2))
    for i in range(3):
        await store.create_run(new_run(f"p1-{i}", parent_id="p1", started_at=t0 + 10 + i))
    await store.create_run(new_run("p2-0", parent_id="p2", started_at=t0 + 20))
    assert await found(store, top_level=True) == ["lone", "p2", "p1"]
    assert await store.count_runs(RunQuery(top_level=True)) == 3
    assert await store.count_runs(RunQuery()) == 7
    assert await store.count_runs(RunQuery(count_up_to=4)) == 4
    assert await store.count_runs(RunQuery(top_level=True, count_up_to=40)) == 3
    assert await store.child_counts(["p1", "p2", "lone", "nope"]) == {"p1": 3, "p2": 1}
    assert await store.child_counts([]) == {}
    kids = await found(store, parent_ids=["p1", "p2"], order_by="started", direction="min")
    assert kids == ["p1-0", "p1-1", "p1-2", "p2-0"]


async def test_name_and_experiment_substrings_ignore_case_and_wildcards(store: Store) -> None:
    await store.create_run(new_run("a", "vision/cnn", name="ResNet_50 baseline"))
    await store.create_run(new_run("b", "vision/cnn-2", name="resnet-18"))
    await store.create_run(new_run("c", "nlp", name="bert 100%"))
    assert sorted(await found(store, name_contains="RESNET")) == ["a", "b"]
    assert await found(store, name_contains="t_5") == ["a"]  # "_" is no wildcard
    assert await found(store, name_contains="0%") == ["c"]
    assert await found(store, name_contains="t%") == []
    assert sorted(await found(store, experiment_contains="VISION")) == ["a", "b"]
    assert await found(store, experiment_contains="vision/cnn") == ["a"]  # an exact name wins
    assert await found(store, experiment_contains="vision/cnn", experiment="nlp") == []
    assert await store.count_runs(RunQuery(experiment_contains="cnn")) == 2


async def test_order_by_a_param_puts_numbers_in_numeric_order_then_text(store: Store) -> None:
    values: dict[str, ParamValue] = {
        "r1": 10,
        "r2": 9.5,
        "r3": "adam",
        "r4": -1,
        "r5": "sgd",
        "r6": 1e-05,
    }
    for run_id, value in values.items():
        await store.create_run(new_run(run_id))
        await store.log_params(run_id, {"lr": value})
    await store.create_run(new_run("none"))
    up = await found(store, order_by_param="lr", direction="min")
    assert up == ["r4", "r6", "r2", "r1", "r3", "r5"]
    down = await found(store, order_by_param="lr", direction="max")
    assert down == ["r1", "r2", "r6", "r4", "r5", "r3"]
    assert await store.count_runs(RunQuery(order_by_param="lr")) == 6
    page = await found(store, order_by_param="lr", direction="min", limit=2, offset=2,
                       experiment_contains="ex")  # fmt: skip
    assert page == ["r2", "r1"]


async def test_pages_by_a_param_are_cut_from_one_order_with_ties_newest_first(
    store: Store,
) -> None:
    t0 = time.time() - 100
    values: dict[str, ParamValue] = {
        "two-old": 2, "two-new": 2, "two-point-oh": 2.0, "neg": -3, "tiny": 1e-05,
        "adam-old": "adam", "adam-new": "adam", "sgd": "sgd", "big": 1e300,
    }  # fmt: skip
    for i, (run_id, value) in enumerate(values.items()):
        await store.create_run(new_run(run_id, started_at=t0 + i))
        await store.log_params(run_id, {"lr": value})
    await store.create_run(new_run("kid", parent_id="two-old", started_at=t0 + 20))
    await store.log_params("kid", {"lr": 0})  # listed, but not among the top-level runs
    await store.create_run(new_run("gone", "attic", started_at=t0 - 50))
    await store.log_params("gone", {"lr": 0})
    await store.end_run("gone", "completed", None, t0 - 40)
    assert await store.archive_runs(t0 - 10, "attic") == 1  # hidden, as archived runs are
    await store.create_run(new_run("other", "exp-2", started_at=t0 + 22))
    await store.log_params("other", {"lr": 1})
    await store.create_run(new_run("none", started_at=t0 + 23))  # no lr: never listed
    # numbers by value (2 before 2.0: equal numbers by their JSON), ties newest first, then
    # text
    up = ["neg", "tiny", "two-new", "two-old", "two-point-oh", "big", "adam-new", "adam-old",
          "sgd"]  # fmt: skip
    down = ["big", "two-point-oh", "two-new", "two-old", "tiny", "neg", "sgd", "adam-new",
            "adam-old"]  # fmt: skip
    for direction, expected in (("min", up), ("max", down)):
        listed = await found(store, order_by_param="lr", direction=direction, top_level=True,
                             experiment="exp", limit=None)  # fmt: skip
        assert listed == expected
        for limit in (1, 2, 3, 100):
            for offset in range(len(listed) + 1):
                page = await found(store, order_by_param="lr", direction=direction,
                                   top_level=True, experiment="exp", limit=limit,
                                   offset=offset)  # fmt: skip
                assert page == listed[offset : offset + limit], (direction, limit, offset)
        rest = await found(store, order_by_param="lr", direction=direction, top_level=True,
                           experiment="exp", limit=None, offset=4)  # fmt: skip
        assert rest == listed[4:]
    query = RunQuery(order_by_param="lr", top_level=True, experiment="exp")
    assert await store.count_runs(query) == len(values)
    everywhere = await found(store, order_by_param="lr", direction="min", limit=None)
    assert set(everywhere) == {*values, "kid", "other"}
    assert everywhere[:3] == ["neg", "kid", "tiny"]
