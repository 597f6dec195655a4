"""``runs/search`` in process: SQL pages ordered by metrics and params, absent values last,
params compared as text whatever their type, and each metric's real latest step and time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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
