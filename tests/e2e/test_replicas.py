"""Two ``chachaml serve`` replicas on one PostgreSQL schema are interchangeable.

Requests go round-robin through both, as a proxy would send them: a token recorded while they
run works on either at once (and once revoked stops on both), an idempotent retry that lands
on the other replica is recognised, an alert whose run is written and checked through both
fires and is delivered once, a browser signed in on one is signed in on the other, and a
rename or a registry change made through one reads at once through the other. (Events over
two replicas — streams, publish-once, the sweep — are in ``test_event_replicas.py``.)
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chachaml.server.tokens import create_token, revoke_token
from chachaml.store import open_store
from tests.support.fork_server import ServerFactory
from tests.support.schema_pool import SchemaPool
from tests.support.serve_proc import ServeProcess
from tests.support.waiting import await_for
from tests.support.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ADMIN = "replicas-admin-token"  # CHACHAML_TOKENS: the same setting on every replica


class Replicas:
    """Requests to each replica in turn (``at``: to a chosen one)."""

    def __init__(self, http: httpx.AsyncClient, a: str, b: str, token: str = ADMIN) -> None:
        self.http, self.a, self.b = http, a, b
        self._next = itertools.cycle([a, b])
        self.auth = {"Authorization": f"Bearer {token}"}

    async def send(
        self, method: str, path: str, body: Any = None, *, at: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {**self.auth, **kw.pop("headers", {})}
        url = (at or next(self._next)) + path
        return await self.http.request(method, url, json=body, headers=headers, **kw)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        answer = await self.send(method, path, body, **kw)
        assert answer.is_success, (path, answer.status_code, answer.text)
        return answer.json()


async def test_two_replicas_share_tokens_retries_alerts_sessions_and_reads(
    tmp_path: Path, schema_pool: SchemaPool, server_factory: ServerFactory
) -> None:
    env = {"CHACHAML_TOKENS": f"admin:{ADMIN}:admin", "CHACHAML_WEBHOOK_ALLOW_PRIVATE": "true"}
    with schema_pool.schema() as url, webhook_receiver() as hook:
        a, b = (ServeProcess(url, tmp_path / n, env, server_factory) for n in ("a", "b"))
        store = await open_store(url)
        try:
            async with anyio.create_task_group() as starting:  # both at once
                for server in (a, b):
                    starting.start_soon(anyio.to_thread.run_sync, server.start)
            async with httpx.AsyncClient(timeout=httpx.Timeout(20.0)) as http:
                both = Replicas(http, a.url, b.url)

                # a token recorded while both run (`chachaml token create`) works on each at once
                token, _ = await create_token(store, "ada", "write")
                ada = Replicas(http, a.url, b.url, token)
                run = (await ada.ok("POST", "/api/w/runs", {"experiment": "rr"}, at=b.url))["id"]
                assert (await ada.ok("GET", f"/api/store/v1/runs/{run}", at=a.url))[
                    "created_by"
                ] == "ada"

                # an idempotent create retried on the other replica answers the first reply
                key = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
                body = {"experiment": "rr", "name": "once"}
                first = await both.send("POST", "/api/w/runs", body, at=a.url, headers=key)
                again = await both.send("POST", "/api/w/runs", body, at=b.url, headers=key)
                assert first.status_code == again.status_code == 201
                assert again.json() == first.json()
                key = {"Idempotency-Key": f"points-{uuid.uuid4().hex}"}
                points = {"metrics": [{"key": "m", "value": float(i), "step": i} for i in range(5)]}
                for at in (a.url, b.url, a.url):
                    await both.ok("POST", f"/api/w/runs/{run}/metrics", points, at=at, headers=key)
                assert (await both.ok("GET", f"/api/store/v1/runs/{run}/metrics"))["m"][
                    "count"
                ] == 5

                # a threshold rule: its run is written and checked through both, it fires once
                rule = {"name": "too-high", "kind": "threshold", "experiment": "alerting",
                        "metric_key": "loss", "op": ">", "threshold": 1.0,
                        "webhook_url": hook.url}  # fmt: skip
                await both.ok("POST", "/api/w/alerts", rule)
                hot = (await both.ok("POST", "/api/w/runs", {"experiment": "alerting"}))["id"]
                for value in (2.0, 3.0, 4.0, 5.0):  # each batch evaluated on arrival
                    await both.ok("POST", f"/api/w/runs/{hot}/metrics", {"loss": value})
                await both.ok("POST", f"/api/w/runs/{hot}/end", {})
                for _ in range(2):
                    await both.ok("POST", "/api/w/alerts/check", {})
                query = {"alert": "too-high"}

                async def delivered() -> bool:
                    events = await both.ok("POST", "/api/store/v1/alerts/events", query)
                    return bool(events["events"]) and all(
                        e["delivery"] == "delivered" for e in events["events"]
                    )

                await await_for(delivered, 20, "the alert delivered")
                events = (await both.ok("POST", "/api/store/v1/alerts/events", query))["events"]
                assert [e["run_id"] for e in events] == [hot]
                assert len(hook.received) == 1  # delivered, so no replica will send it again

                # a browser signed in on A is signed in on B (the cookie holds the token;
                # cookies ignore the port, as they would behind the proxy's one address)
                async with httpx.AsyncClient(timeout=20.0) as browser:
                    signin = await browser.post(a.url + "/signin", data={"token": ADMIN})
                    assert signin.status_code == 303
                    page = await browser.get(b.url + f"/runs/{run}")
                    assert page.status_code == 200 and "admin" in page.text
                    tag = {"key": "k", "value": "v"}
                    csrf = {"X-CSRF-Token": browser.cookies["chachaml_csrf"]}
                    tagged = await browser.post(b.url + f"/runs/{run}/tags", json=tag, headers=csrf)
                    assert tagged.status_code == 200, tagged.text
                    forged = await browser.post(a.url + f"/runs/{run}/tags", json=tag)
                    assert forged.status_code == 403  # the CSRF check holds on either replica

                # a rename or a registry change through one reads at once through the other
                mlflow = "/api/2.0/mlflow"
                await both.ok("POST", f"{mlflow}/runs/update", {"run_id": run, "run_name": "new"},
                              at=a.url)  # fmt: skip
                assert (await both.ok("GET", f"/api/store/v1/runs/{run}", at=b.url))[
                    "name"
                ] == "new"
                exp = (await both.ok("GET", "/api/store/v1/experiments/rr", at=a.url))["id"]
                assert "rr" in (await both.ok("GET", "/api/runs/keys", at=a.url))["experiments"]
                await both.ok("POST", f"{mlflow}/experiments/update",
                              {"experiment_id": str(exp), "new_name": "rr2"}, at=b.url)  # fmt: skip
                assert (
                    await both.send("GET", "/api/store/v1/experiments/rr2", at=a.url)
                ).is_success
                keys = await both.ok("GET", "/api/runs/keys", at=a.url)
                assert "rr2" in keys["experiments"] and "rr" not in keys["experiments"]
                await both.ok("POST", "/api/w/models/clf/create", {"tags": {"team": "x"}}, at=a.url)
                await both.ok("POST", "/api/w/models/clf/rename", {"new_name": "clf2"}, at=b.url)
                await both.ok("POST", "/api/w/models/clf2/tags", {"team": "y"}, at=a.url)
                model = await both.ok("GET", "/api/store/v1/models/clf2", at=b.url)
                assert model["name"] == "clf2" and model["tags"] == {"team": "y"}
                assert (
                    await both.send("GET", "/api/store/v1/models/clf", at=a.url)
                ).status_code == 404

                # revoked while both run: each refuses it within the access cache's 2 s
                await revoke_token(store, token)

                async def refused_on_both() -> bool:
                    sent = [await ada.send("GET", "/api/store/v1/experiments", at=u)
                            for u in (a.url, b.url)]  # fmt: skip
                    return all(s.status_code == 401 for s in sent)

                await await_for(refused_on_both, 10, "the revoked token refused by both")
        finally:
            await store.close()
            a.stop()
            b.stop()
