"""Training code against a server: the remote store through the client, in process.

The tests reach a server app in this process through ``httpx.ASGITransport``
(:mod:`tests.support.remote_server`), as the contract suite does; the one smoke test over a real
socket, with a real ``chachaml serve``, is :mod:`tests.e2e.test_remote_socket`.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from chachaml.client.alerts import Alerts
from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import Pipeline, PipelineFailed
from chachaml.client.pipelines.runner import StepContext
from chachaml.client.registry import Registry
from chachaml.client.remote import RemoteStore
from chachaml.errors import Forbidden, NotFound, Unauthorized
from tests.conftest import make_settings
from tests.support.remote_server import BASE_URL, InProcessServer

TOKEN = "ada-remote-token"
READER = "rita-read-token"


@pytest.fixture
def team(tmp_path: Path) -> InProcessServer:
    """A team-mode server app in this process: ``ada`` writes, ``rita`` only reads."""
    tokens = (("ada", TOKEN, "write"), ("rita", READER, "read"))
    return InProcessServer(tmp_path / "team.db", tmp_path / "artifacts", tokens)


def _client(team: InProcessServer, tmp_path: Path, token: str) -> Client:
    settings = make_settings(token=token)
    return Client(BASE_URL, str(tmp_path / "a"), settings=settings, transport=team)


def test_a_wrong_token_fails_at_start_run_with_a_clear_message(
    team: InProcessServer, tmp_path: Path
) -> None:
    client = _client(team, tmp_path, "not-the-token")
    try:
        with pytest.raises(Unauthorized, match="refused the token"):
            client.start_run("x")
    finally:
        client.close()


def test_a_read_token_reads_but_cannot_define_alert_rules(
    team: InProcessServer, tmp_path: Path
) -> None:
    writer, reader = _client(team, tmp_path, TOKEN), _client(team, tmp_path, READER)
    try:
        Alerts(writer).set_threshold_alert("low", metric="acc", op="<", threshold=0.5)
        assert [a.name for a in Alerts(reader).alerts()] == ["low"]
        with pytest.raises(Forbidden, match="read scope"):
            Alerts(reader).set_threshold_alert("other", metric="acc", op="<", threshold=0.5)
        with pytest.raises(Forbidden, match="read scope"):
            Alerts(reader).delete_alert("low")
    finally:
        writer.close()
        reader.close()


def test_rules_are_muted_and_test_fired_by_the_server_with_a_write_token(
    tmp_path: Path,
) -> None:
    from chachaml.tools.webhooks import Delivery
    from tests.support.webhook_receiver import webhook_receiver

    # the server may deliver to the receiver on loopback; the clients' settings do not matter
    delivery = Delivery(timeout=1.0, attempts=2, backoff=0.01, allow_private=True)
    tokens = (("ada", TOKEN, "write"), ("rita", READER, "read"))
    server = InProcessServer(tmp_path / "team.db", tmp_path / "artifacts", tokens, delivery)
    settings = make_settings(token=TOKEN, webhook_allow_private=True)
    writer = Client(BASE_URL, str(tmp_path / "a"), settings=settings, transport=server)
    reader = _client(server, tmp_path, READER)
    with webhook_receiver() as receiver:
        try:
            api = Alerts(writer)
            api.set_threshold_alert("low", "acc", "<", 0.5, webhook_url=receiver.url, secret="s")
            assert api.mute_alert("low").muted
            assert [(a.name, a.muted, a.signed) for a in Alerts(reader).alerts()] == [
                ("low", True, True)
            ]
            with writer.run("remote") as run:
                writer.log_metric("acc", 0.1)
            assert api.alert_history() == []  # the server skipped the muted rule
            trial = api.send_test_alert("low")
            assert trial.delivered and receiver.received[-1].json["test"] is True
            assert api.alert_history() == []
            for call in (Alerts(reader).mute_alert, Alerts(reader).unmute_alert,
                         Alerts(reader).send_test_alert):  # fmt: skip
                with pytest.raises(Forbidden, match="read scope"):
                    call("low")
            assert len(receiver.received) == 1 and Alerts(reader).alerts()[0].muted
            assert not api.unmute_alert("low").muted
            assert [e.run_id for e in api.check_alerts()] == [run.id]
            with pytest.raises(NotFound, match=r"alert 'nope' not found \(alerts: low\)"):
                api.mute_alert("nope")
            with pytest.raises(NotFound, match="alert 'nope' not found"):
                api.send_test_alert("nope")
        finally:
            writer.close()
            reader.close()


def test_registry_aliases_tags_and_notes_work_over_http(
    team: InProcessServer, tmp_path: Path
) -> None:
    client = _client(team, tmp_path, TOKEN)
    registry = Registry(client)
    try:
        with client.run(experiment="reg") as run:
            client.log_artifact("model", {"w": 1})
        registry.register_model("clf", "model", run.id)
        assert registry.set_alias("clf", "champion", 1).aliases == ["champion"]
        assert registry.set_model_tag("clf", "team", "vision") == {"team": "vision"}
        assert registry.set_model_version_tag("clf", 1, "data", "v2") == {"data": "v2"}
        assert registry.set_model_note("clf", "# the classifier").note == "# the classifier"
        model = registry.model("clf")
        assert (model.aliases, model.tags) == ({"champion": 1}, {"team": "vision"})
        version = registry.model_version("clf", alias="champion")
        assert (version.version, version.tags, version.created_by) == (1, {"data": "v2"}, "ada")
        registry.delete_alias("clf", "champion")
        with pytest.raises(NotFound, match="no alias 'champion'"):
            registry.model_version("clf", alias="champion")
    finally:
        client.close()


def test_a_pipeline_runs_and_resumes_over_http(team: InProcessServer, tmp_path: Path) -> None:
    client = _client(team, tmp_path, TOKEN)
    calls: list[str] = []

    def extract(ctx: StepContext) -> int:
        return 3

    def load(ctx: StepContext) -> int:
        calls.append("load")
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return int(ctx.prev_result) * 2

    try:
        pipe = Pipeline("etl", [extract, load], client=client)
        with pytest.raises(PipelineFailed, match="disk full") as failed:
            pipe.run()
        again = pipe.resume(failed.value.pipeline_id)
        assert again.results["load"] == 6
        stored = again.detail
        assert (stored.status, stored.created_by, stored.resumes) == ("completed", "ada", 1)
        listed = client.runtime.call(client.runtime.store.list_pipelines, "etl", None, None)
        assert [p.id for p in listed] == [failed.value.pipeline_id]
    finally:
        client.close()


def test_alerts_are_defined_by_the_client_and_evaluated_by_the_server(
    team: InProcessServer, tmp_path: Path
) -> None:
    client = _client(team, tmp_path, TOKEN)
    alerts = Alerts(client)
    try:
        alerts.set_threshold_alert("acc-low", metric="acc", op="<", threshold=0.8, experiment="m")
        alerts.set_stale_alert("quiet", no_completed_run_hours=1, experiment="q")
        with client.run(experiment="m") as run:
            client.log_metric("acc", 0.5)
        (fired,) = alerts.alert_history("acc-low")  # the server evaluated the ended run
        assert (fired.run_id, fired.value) == (run.id, 0.5)
        with client.run(experiment="q") as old:
            pass
        assert alerts.check_alerts() == []  # nothing is stale yet, and acc-low fired already
        later = time.time() + 7200  # the server judges staleness by the clock it is given
        remote = client.runtime.store
        assert isinstance(remote, RemoteStore)
        found = client.runtime.call(remote.check_alerts, later, None)
        assert [(e.alert, e.run_id) for e in found] == [("quiet", old.id)]
        assert [a.name for a in alerts.alerts()] == ["acc-low", "quiet"]
        alerts.delete_alert("quiet")
        with pytest.raises(NotFound, match="alert 'quiet' not found"):
            alerts.alert_history("quiet")
    finally:
        client.close()


@pytest.mark.anyio
async def test_curl_style_requests_against_the_in_process_server(team: InProcessServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=team, base_url=BASE_URL, headers=auth) as c:
        run_id = (await c.post("/api/w/runs", json={"experiment": "curl"})).json()["id"]
        logged = await c.post(f"/api/w/runs/{run_id}/metrics", json={"acc": 0.9})
        assert logged.json() == {"points": 1}
        assert (await c.post(f"/api/w/runs/{run_id}/end", json={})).status_code == 200
        assert (await c.get(f"/api/store/v1/runs/{run_id}")).json()["metrics"] == {"acc": 0.9}
        assert (await c.get("/api/openapi.json")).json()["openapi"] == "3.1.0"
