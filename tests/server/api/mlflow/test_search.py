"""``runs/search`` in process: SQL pages ordered by metrics and params, absent values last,
params compared as text whatever their type, and each metric's real latest step and time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chachaml.records.runs import RunInfo, RunQuery
from chachaml.server.api.mlflow import entities, filters
from chachaml.server.api.mlflow import search as search_module
from chachaml.server.api.mlflow.ids import millis
from chachaml.store import ServerStore
from chachaml.tools import runs as run_ops
from tests.server.api.mlflow.test_routes import API, mnist_id, ok, search, store, web
from tests.support.mcp_seed import MID, NEW, OLD

pytestmark = pytest.mark.anyio
__all__ = ["store", "web"]  # the fixtures, shared with test_routes


async def make_run(
    web: httpx.AsyncClient, exp_id: str, start: int, metrics: dict[str, float], lr: str | None
) -> str:
    body = {"experiment_id": exp_id, "start_time": start}
    made = await ok(await web.post(f"{API}/runs/create", json=body))
    run_id: str = made["run"]["info"]["run_id"]
    batch: dict[str, Any] = {
        "run_id": run_id,
        "metrics": [
            {"key": k, "value": v, "timestamp": start, "step": 0} for k, v in metrics.items()
        ],
        "params": [] if lr is None else [{"key": "lr", "value": lr}],
    }
    await ok(await web.post(f"{API}/runs/log-batch", json=batch))
    return run_id


async def pages(web: httpx.AsyncClient, size: int, **body: Any) -> list[str]:
    seen: list[str] = []
    token = None
    while True:
        answer = await ok(await web.post(f"{API}/runs/search", json={
            "max_results": size, **body, **({"page_token": token} if token else {}),
        }))  # fmt: skip
        seen += [r["info"]["run_id"] for r in answer["runs"]]
        token = answer.get("next_page_token")
        if not token:
            return seen


async def test_an_order_by_a_metric_lists_runs_without_it_last_on_every_page(
    web: httpx.AsyncClient,
) -> None:
    exp_id = (await ok(await web.post(f"{API}/experiments/create", json={"name": "grid"})))[
        "experiment_id"
    ]
    scores = [0.3, 0.9, None, 0.5, None, 0.7, 0.1, None]
    runs = [
        await make_run(web, exp_id, 1_700_000_000_000 + i * 1000,
                       {} if s is None else {"acc": s}, None if s is None else f"0.{i}")
        for i, s in enumerate(scores)
    ]  # fmt: skip
    with_acc = sorted((s, r) for r, s in zip(runs, scores, strict=True) if s is not None)
    without = [r for r, s in reversed(list(zip(runs, scores, strict=True))) if s is None]
    best_first = [r for _, r in reversed(with_acc)] + without  # absent last, newest first
    for size in (1, 2, 3, 5, 8, 20):
        got = await pages(web, size, experiment_ids=[exp_id], order_by=["metrics.acc DESC"])
        assert got == best_first, size
    worst_first = [r for _, r in with_acc] + without
    assert await pages(web, 3, experiment_ids=[exp_id], order_by=["metrics.acc ASC"]) == (
        worst_first
    )
    by_lr = await pages(web, 3, experiment_ids=[exp_id], order_by=["params.lr DESC"])
    assert by_lr == [r for r, s in reversed(list(zip(runs, scores, strict=True))) if s] + without
    # a filter in SQL beside the order: only runs with the metric can pass it
    assert await pages(web, 2, experiment_ids=[exp_id], filter="metrics.acc > 0.4",
                       order_by=["metrics.acc DESC"]) == best_first[:3]  # fmt: skip


async def test_params_match_as_text_whatever_type_they_were_logged_as(
    web: httpx.AsyncClient,
) -> None:
    exp_id = await mnist_id(web)
    as_text = await make_run(web, exp_id, 1_700_000_000_000, {"acc": 0.5}, "0.01")  # 2023
    # NEW and MID logged lr=0.01 natively (a float); the MLflow run logged the text "0.01"
    assert await search(web, experiment_ids=[exp_id], filter="params.lr = '0.01'") == [
        NEW, MID, as_text,
    ]  # fmt: skip
    assert await search(web, filter="params.lr = '0.010'") == []  # not how 0.01 prints
    assert await search(web, filter="params.depth = '2'") == [OLD]  # an int


async def test_start_time_filters_run_in_sql_to_the_millisecond(web: httpx.AsyncClient) -> None:
    exp_id = await mnist_id(web)
    started = (await ok(await web.get(f"{API}/runs/get", params={"run_id": MID})))["run"]
    ms = started["info"]["start_time"]
    around = {
        f"attributes.start_time = {ms}": [MID],
        f"attributes.start_time >= {ms}": [NEW, MID],
        f"attributes.start_time > {ms}": [NEW],
        f"attributes.start_time < {ms}": [OLD],
        f"attributes.start_time <= {ms} AND attributes.start_time > {ms - 1}": [MID],
    }
    for text, expected in around.items():
        assert await search(web, experiment_ids=[exp_id], filter=text) == expected, text


async def test_found_runs_carry_each_metrics_latest_step_and_time(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    found = await ok(await web.post(f"{API}/runs/search", json={"order_by": ["metrics.acc"]}))
    by_id = {r["info"]["run_id"]: r["data"]["metrics"] for r in found["runs"]}
    summary = (await run_ops.get_run(store, OLD)).metric_summaries
    assert sorted(by_id[OLD], key=lambda m: m["key"]) == [
        {"key": k, "value": s.last, "step": s.step, "timestamp": millis(s.timestamp)}
        for k, s in sorted(summary.items())
    ]
    assert {m["step"] for m in by_id[OLD]} == {2}  # three points each, steps 0-2


async def in_memory(store: ServerStore, exp_names: list[str], text: str,
                    orders: list[str]) -> list[str]:  # fmt: skip
    """What the per-run evaluator answers: every run read, every clause checked here."""
    runs: list[RunInfo] = []
    for name in exp_names:
        runs += await run_ops.query_runs(store, RunQuery(experiment=name, limit=None))
    params = await run_ops.run_params(store, [r.id for r in runs])
    kept = [r for r in runs if filters.matches(r, params.get(r.id, {}), filters.parse_filter(text))]
    return [
        r.id for r in search_module._sort(kept, params, [filters.parse_order(o) for o in orders])
    ]


async def test_ids_names_parents_and_several_experiments_are_answered_in_sql_as_per_run(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    exps = {}
    for name in ("sweep-a", "sweep-b"):
        made = await ok(await web.post(f"{API}/experiments/create", json={"name": name}))
        exps[name] = made["experiment_id"]
    base = 1_700_000_000_000
    parent = await make_run(web, exps["sweep-a"], base, {"acc": 0.5}, "0.1")
    runs = [parent]
    for i, (exp, acc) in enumerate([("sweep-a", 0.7), ("sweep-b", 0.9), ("sweep-b", None)]):
        body = {
            "experiment_id": exps[exp],
            "start_time": base + 1000 * (i + 1),
            "run_name": f"trial-{i}",
            "tags": [{"key": "mlflow.parentRunId", "value": parent}],
        }
        rid = (await ok(await web.post(f"{API}/runs/create", json=body)))["run"]["info"]["run_id"]
        if acc is not None:
            await ok(
                await web.post(
                    f"{API}/runs/log-metric",
                    json={"run_id": rid, "key": "acc", "value": acc, "timestamp": base, "step": 0},
                )
            )
        runs.append(rid)
    # an imported run whose parent stayed behind keeps it as a tag; an unnamed run may carry
    # MLflow's name tag (set natively, as chachaml stores any tag)
    orphan = run_ops.new_run("sweep-b", None, created_by="ana")
    await run_ops.start_run(store, orphan)
    await store.set_tags(orphan.id, {"mlflow.parentRunId": parent, "mlflow.runName": "trial-0"})
    names = ["sweep-a", "sweep-b"]
    cases = [
        f"tags.mlflow.parentRunId = '{parent}'",
        f"tags.`mlflow.parentRunId` = '{parent}' AND metrics.acc > 0.6",
        "attributes.run_name = 'trial-0'",
        "tags.mlflow.runName = 'trial-0'",
        "attributes.run_name IN ('trial-0', 'trial-2')",
        "attributes.run_name IN ('trial-1', 'nope') AND attributes.run_name = 'trial-1'",
        f"attributes.run_id = '{runs[1]}'",
        f"attributes.run_id IN ('{runs[1]}', '{runs[2]}', '{orphan.id}')",
        f"attributes.run_id IN ('{runs[1]}') AND attributes.run_id = '{runs[2]}'",  # nothing
        "metrics.acc >= 0.5",
        "",
    ]
    for text in cases:
        assert not filters.plan(filters.parse_filter(text), entities.FIELD_TAGS).rest, text
        for orders in ([], ["metrics.acc DESC"], ["attributes.start_time ASC"]):
            expected = await in_memory(store, names, text, orders)
            for size in (2, 50):
                got = await pages(web, size, experiment_ids=list(exps.values()), filter=text,
                                  order_by=orders)  # fmt: skip
                assert got == expected, (text, orders, size)
    assert await in_memory(store, names, f"tags.mlflow.parentRunId = '{parent}'", []) == [
        orphan.id, *reversed(runs[1:]),
    ]  # fmt: skip
