"""``chachaml migrate``: SQLite to PostgreSQL, identical answers, refusal, merge and resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import (
    PipelineFailed,
    Step,
    pipeline,
    pipelines,
    run_pipeline,
)
from chachaml.client.registry import Registry
from chachaml.errors import Conflict
from chachaml.store import open_store
from chachaml.store.transfer import MigrationReport, as_sql_store, migrate
from tests.conftest import make_settings
from tests.support.client_seed import seed
from tests.support.services import postgres_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def answers(client: Client) -> dict[str, Any]:
    registry = Registry(client)
    runs = client.runs(limit=None)
    out: dict[str, Any] = {
        "runs": [r.model_dump() for r in runs],
        "details": [client.get_run(r.id).model_dump() for r in runs],
        "best": client.best_run("acc").model_dump(),  # type: ignore[union-attr]
        "best_min": client.best_run("loss", direction="min").model_dump(),  # type: ignore[union-attr]
        "search": [r.id for r in client.search_runs("acc", ">", 0.9)],
        "export": client.export_runs(),
        "experiments": [e.model_dump(exclude={"id"}) for e in client.experiments()],
        "history": client.metric_history(runs[-1].id, "loss").model_dump(),
        "compare": client.compare_runs([r.id for r in runs[:3]]).model_dump(),
        "models": [m.model_dump() for m in registry.models()],
        "model": registry.model("cnn").model_dump(),
        "production": registry.model_version("cnn").model_dump(),
        "loaded": registry.load_model("cnn", alias="champion"),
    }
    return out


def client_for(url: str, tmp_path: Path) -> Client:
    return Client(url, str(tmp_path / "artifacts"), settings=make_settings())


def test_sqlite_store_moves_to_postgres_and_answers_identically(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    local = client_for(sqlite_url, tmp_path)
    try:
        seed(local)
        expected = answers(local)
    finally:
        local.close()
    assert main(["migrate", "--from", sqlite_url, "--to", pg_url]) == 0
    captured = capsys.readouterr()
    assert "counts verified" in captured.out and captured.err == ""  # no bars off a terminal
    team = client_for(pg_url, tmp_path)
    try:
        assert answers(team) == expected
    finally:
        team.close()


def test_a_non_empty_target_is_refused_unless_merging(tmp_path: Path, pg_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    for url, experiment in ((sqlite_url, "local"), (pg_url, "already-there")):
        client = client_for(url, tmp_path)
        with client.run(experiment=experiment):
            client.log_metric("m", 1.0)
        client.close()
    assert main(["migrate", "--from", sqlite_url, "--to", pg_url]) == 2
    assert main(["migrate", "--from", sqlite_url, "--to", pg_url, "--merge"]) == 0
    team = client_for(pg_url, tmp_path)
    try:
        assert {r.experiment for r in team.runs()} == {"local", "already-there"}
    finally:
        team.close()


def test_an_interrupted_migration_resumes_without_duplicates(tmp_path: Path, pg_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    local = client_for(sqlite_url, tmp_path)
    for i in range(7):
        with local.run(experiment="e", name=f"r{i}", params={"i": i}):
            local.log_metrics({"m": float(i), "n": 1.0})
    local.close()

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(label: str, done: int, total: int) -> None:
        if label == "runs" and done < total:
            raise Interrupted

    async def run(progress: Any) -> None:
        source = as_sql_store(await open_store(sqlite_url), sqlite_url)
        target = as_sql_store(await open_store(pg_url), pg_url)
        try:
            await migrate(source, target, progress=progress, batch=3)
        finally:
            await source.close()
            await target.close()

    with pytest.raises(Interrupted):
        anyio.run(run, stop_after_first_batch)
    anyio.run(run, None)  # resumes: not refused as non-empty, copies only the rest
    team = client_for(pg_url, tmp_path)
    try:
        runs = team.runs(limit=None)
        assert sorted(r.name or "" for r in runs) == [f"r{i}" for i in range(7)]
        assert all(team.get_run(r.id).metric_summaries["m"].count == 1 for r in runs)
    finally:
        team.close()


def test_merging_a_model_that_differs_is_a_conflict(tmp_path: Path, pg_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    for url in (sqlite_url, pg_url):
        client = client_for(url, tmp_path)
        with client.run(experiment="e") as run:
            client.log_artifact("model", {"x": url})
        Registry(client).register_model("shared-name", run_id=run.id)
        client.close()

    async def merge() -> None:
        source = as_sql_store(await open_store(sqlite_url), sqlite_url)
        target = as_sql_store(await open_store(pg_url), pg_url)
        try:
            await migrate(source, target, merge=True)
        finally:
            await source.close()
            await target.close()

    with pytest.raises(Conflict, match="shared-name"):
        anyio.run(merge)


def test_pipelines_move_with_their_steps_once(tmp_path: Path, pg_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    local = client_for(sqlite_url, tmp_path)
    try:
        with pytest.raises(PipelineFailed):
            run_pipeline(
                "etl", [Step("a", lambda c: [1]), Step("b", lambda c: 1 / 0), Step("c", print)],
                client=local,
            )  # fmt: skip
        run_pipeline("ok", [Step("x", lambda c: {"k": 1}), Step("y", print)], client=local)
        expected = [pipeline(p.id, client=local) for p in pipelines(client=local)]
    finally:
        local.close()

    async def run() -> MigrationReport:
        source = as_sql_store(await open_store(sqlite_url), sqlite_url)
        target = as_sql_store(await open_store(pg_url), pg_url)
        try:
            return await migrate(source, target)
        finally:
            await source.close()
            await target.close()

    first = anyio.run(run)
    assert (first.copied["pipelines"], first.copied["pipeline_steps"]) == (2, 5)
    again = anyio.run(run)  # a resumed migration: everything is there already
    assert again.skipped_pipelines == 2 and "pipelines" not in again.copied
    team = client_for(pg_url, tmp_path)
    try:
        assert [pipeline(p.id, client=team) for p in pipelines(client=team)] == expected
        assert {s.status for s in expected[1].steps} == {"completed", "failed", "skipped"}
    finally:
        team.close()
