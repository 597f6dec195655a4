"""Importing a real MLflow store (made by the ``mlflow`` package) into chachaml, per backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chachaml.errors import InvalidInput, NotFound
from chachaml.store import Store, open_store
from chachaml.store.artifacts import ArtifactStore, open_artifact_store
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import logged_models as model_ops
from chachaml.tools import metrics as metric_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.mlflow_counts import MARKER
from chachaml.tools.mlflow_import import (
    MODEL_ID_TAG,
    SOURCE_TAG,
    VERSION_TAG,
    holder_run_id,
    import_mlflow,
    imported_model_id,
)
from tests.support.mlflow_seed import EXPECTED, VISION, Seeded, mlflow_points, seed_mlflow

pytestmark = [
    pytest.mark.anyio,
    # MLflow's own deprecations (SQLAlchemy's, registry stages) are not chachaml's to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """One MLflow store (SQLite backend, local artifact root) every test imports from."""
    folder = tmp_path_factory.mktemp("mlflow")
    return seed_mlflow(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", folder)


@pytest.fixture
async def target(store_url: str) -> AsyncIterator[Store]:
    store = await open_store(store_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "chachaml-artifacts"))


class Interrupted(Exception):
    """Raised by a progress callback to stop an import part-way, as Ctrl-C would."""


async def test_an_import_holds_every_count_and_mlflows_values(
    target: Store, artifacts: ArtifactStore, mlflow_store: Seeded
) -> None:
    report = await import_mlflow(target, artifacts, mlflow_store.uri)
    assert report.read.as_dict() == EXPECTED
    assert report.stored.as_dict() == EXPECTED
    assert report.added == EXPECTED and report.mismatches == {}
    assert report.skipped == []

    ids = mlflow_store.runs
    sweep = await run_ops.get_run(target, ids["sweep"])  # the MLflow run id is kept
    assert (sweep.experiment, sweep.name, sweep.status, sweep.created_by) == (
        "vision",
        "sweep",
        "completed",
        "ada",
    )
    assert sweep.started_at.timestamp() == 1_700_000_000.0
    assert sweep.ended_at is not None and sweep.ended_at.timestamp() == 1_700_000_060.0
    assert sweep.params == {"lr": "0.01", "optimizer": "adam"}
    assert sweep.tags == {"team": "vision", MARKER: f"mlflow {mlflow_store.uri}"}
    assert sweep.note == "## the sweep\nthree trials"
    (dataset,) = sweep.datasets
    assert (dataset.role, dataset.name, dataset.extra["source_type"]) == (
        "training",
        "digits",
        "s3",
    )
    assert "s3://bucket/digits.csv" in (dataset.source or "")

    series = await metric_ops.metric_history(target, ids["sweep"], "loss")
    expected = mlflow_points(mlflow_store.uri, ids["sweep"], "loss")
    assert len(expected) == 1000
    assert series.steps == [p[0] for p in expected]
    assert series.values == [p[1] for p in expected]
    assert series.timestamps == [p[2] / 1000 for p in expected]

    assert sorted(a.name for a in sweep.artifacts) == [
        "model/MLmodel",
        "model/model.pkl",
        "plots/deep/inner.json",
        "plots/loss.txt",
    ]
    _, data = await artifact_ops.read_bytes(target, artifacts, ids["sweep"], "model/model.pkl")
    assert data == bytes(range(256)) * 40
    _, data = await artifact_ops.read_bytes(
        target, artifacts, ids["sweep"], "plots/deep/inner.json"
    )
    assert data == b'{"nested": true}\n'

    trials = [await run_ops.get_run(target, ids[f"trial-{i}"]) for i in range(2)]
    assert [t.parent_id for t in trials] == [ids["sweep"]] * 2
    assert [t.status for t in trials] == ["completed", "failed"]
    assert [t.params for t in trials] == [{"depth": "3"}, {"depth": "4"}]
    bert = await run_ops.get_run(target, ids["bert"])
    assert bert.experiment == "nlp" and bert.ended_at is None  # still running in MLflow
    with pytest.raises(NotFound):
        await run_ops.get_run(target, mlflow_store.deleted_run)

    names = {e.name: e for e in await experiment_ops.list_experiments(target)}
    assert set(names) == {"vision", "nlp", "default"}  # the deleted one stays behind
    assert names["vision"].description == "image models"

    model = await registry_ops.get_model(target, "classifier")
    assert model.note == "digits classifier" and model.tags == {"owner": "ada"}
    assert model.aliases == {"champion": 1}
    v1, v2, v3 = sorted(model.versions, key=lambda v: v.version)
    # a model folder is registered as MLflow's protocol registers one: source kept, loadable
    assert (v1.run_id, v1.artifact, v1.stage) == (ids["sweep"], "model", "production")
    assert (v1.artifact_uri, v1.serializer) == (f"runs:/{ids['sweep']}/model", "mlflow")
    assert (v2.run_id, v2.artifact, v2.stage) == (ids["retrain"], "model", "staging")
    assert v1.tags["reviewed"] == "yes" and v1.tags[VERSION_TAG] == "1"
    assert v2.description == "retrained"

    # MLflow 3: the logged model is on its run in the logged-models endpoints' shape
    rid3 = ids["mlflow3"]
    run3 = await run_ops.get_run(target, rid3)
    model_id = imported_model_id(rid3, mlflow_store.logged_model)
    second_id = imported_model_id(rid3, mlflow_store.second_net)
    assert model_id.startswith(f"m-{rid3}-")
    assert {k: v for k, v in run3.tags.items() if k.startswith(model_ops.TAG)} == {
        model_ops.TAG + model_id: "net", model_ops.TAG + second_id: "net",
    }  # fmt: skip
    record = await model_ops.read_logged_model(target, artifacts, model_id)
    assert (record.name, record.run_id, record.source_run_id, record.status) == (
        "net", rid3, rid3, "LOGGED_MODEL_READY",
    )  # fmt: skip
    assert (record.model_type, record.params) == ("sklearn", {"C": "1.0"})
    assert record.tags == {"stage": "candidate", MODEL_ID_TAG: mlflow_store.logged_model}
    # two models named "net" on one run: the first keeps the folder, the second has its own
    second = await model_ops.read_logged_model(target, artifacts, second_id)
    assert (record.path, second.path) == ("net", f"net-{second_id[-8:]}")
    assert sorted(a.name for a in run3.artifacts) == sorted([
        model_ops.record_name(model_id), model_ops.record_name(second_id),
        "net/MLmodel", "net/model.pkl", f"{second.path}/MLmodel",
    ])  # fmt: skip
    _, data = await artifact_ops.read_bytes(target, artifacts, rid3, "net/model.pkl")
    assert data == bytes(range(256)) * 40
    _, data = await artifact_ops.read_bytes(target, artifacts, rid3, f"{second.path}/MLmodel")
    assert data == b"flavors:\n  other: {}\n"
    # a model logged outside any run comes over onto a run of its own, ended with it
    holder = await run_ops.get_run(target, holder_run_id(mlflow_store.runless))
    free_id = imported_model_id(holder.id, mlflow_store.runless)
    free = await model_ops.read_logged_model(target, artifacts, free_id)
    assert (free.name, free.source_run_id, free.model_type) == ("free", None, "custom")
    assert (holder.experiment, holder.name, holder.status) == ("vision", "free", "completed")
    _, data = await artifact_ops.read_bytes(target, artifacts, holder.id, "free/MLmodel")
    assert data == b"flavors:\n  free: {}\n"
    (standalone,) = (await registry_ops.get_model(target, "standalone")).versions
    assert (standalone.run_id, standalone.artifact, standalone.artifact_uri) == (
        holder.id, "free", f"models:/{free_id}",
    )  # fmt: skip
    # ...and the version MLflow registered from models:/<its id> comes from it
    assert (v3.run_id, v3.artifact, v3.artifact_uri) == (rid3, "net", f"models:/{model_id}")
    assert v3.tags[SOURCE_TAG] == f"models:/{mlflow_store.logged_model}"


async def test_a_second_import_adds_nothing(
    target: Store, artifacts: ArtifactStore, mlflow_store: Seeded
) -> None:
    await import_mlflow(target, artifacts, mlflow_store.uri)
    again = await import_mlflow(target, artifacts, mlflow_store.uri)
    assert set(again.added.values()) == {0}
    assert again.before.as_dict() == again.stored.as_dict() == EXPECTED
    assert again.mismatches == {}
    model = await registry_ops.get_model(target, "classifier")
    assert len(model.versions) == 3 and len(model.history) == 4  # 3 registrations, 1 alias


async def test_an_interrupted_import_resumes_without_duplicating_anything(
    target: Store, artifacts: ArtifactStore, mlflow_store: Seeded
) -> None:
    def stop_mid_run(label: str, done: int, total: int) -> None:
        if label == "files" and done == 2:  # the sweep run has 4 files: half of them copied
            raise Interrupted

    with pytest.raises(Interrupted):
        await import_mlflow(target, artifacts, mlflow_store.uri, progress=stop_mid_run)
    half = await run_ops.get_run(target, mlflow_store.runs["sweep"])
    assert MARKER not in half.tags and len(half.artifacts) == 2  # half imported, unmarked

    report = await import_mlflow(target, artifacts, mlflow_store.uri)
    assert report.stored.as_dict() == EXPECTED and report.mismatches == {}
    assert report.before.metric_points == 1002  # its metrics were stored before the stop...
    assert report.added["metric_points"] == EXPECTED["metric_points"] - 1002  # ...and not again
    done = await run_ops.get_run(target, mlflow_store.runs["sweep"])
    assert MARKER in done.tags
    assert len(done.artifacts) == 4 and len(done.datasets) == 1
    assert done.metric_summaries["loss"].count == 1000


async def test_experiment_names_import_part_of_the_store(
    target: Store, artifacts: ArtifactStore, mlflow_store: Seeded
) -> None:
    report = await import_mlflow(target, artifacts, mlflow_store.uri, experiments=["vision"])
    assert report.stored.as_dict() == VISION and report.mismatches == {}
    assert {e.name for e in await experiment_ops.list_experiments(target)} == {"vision"}
    with pytest.raises(NotFound):
        await run_ops.get_run(target, mlflow_store.runs["bert"])
    rest = await import_mlflow(target, artifacts, mlflow_store.uri, experiments=["nlp"])
    assert rest.added["runs"] == 1 and rest.added["models"] == 0


async def test_an_unknown_experiment_or_a_missing_store_is_refused(
    target: Store, artifacts: ArtifactStore, mlflow_store: Seeded, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match=r"no MLflow experiment named 'audio'.*nlp, vision"):
        await import_mlflow(target, artifacts, mlflow_store.uri, experiments=["audio"])
    missing = tmp_path / "nowhere.db"
    with pytest.raises(InvalidInput, match="does not exist"):
        await import_mlflow(target, artifacts, f"sqlite:///{missing}")
    assert not missing.exists()  # MLflow would have created an empty store there
    with pytest.raises(InvalidInput, match="does not exist"):
        await import_mlflow(target, artifacts, str(tmp_path / "mlruns"))


async def test_a_default_tracking_uri_set_elsewhere_is_neither_used_nor_lost(
    target: Store, artifacts: ArtifactStore, mlflow_store: Seeded, tmp_path: Path
) -> None:
    """A program (or another test) that called ``mlflow.set_tracking_uri`` keeps its default,
    and the import still reads the model sources of the store it was given."""
    import mlflow

    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(elsewhere)
    try:
        report = await import_mlflow(target, artifacts, mlflow_store.uri)
        assert report.mismatches == {} and report.stored.as_dict() == EXPECTED
        assert mlflow.get_tracking_uri() == elsewhere
        assert os.environ["MLFLOW_TRACKING_URI"] == elsewhere
    finally:
        mlflow.set_tracking_uri(before)  # type: ignore[arg-type]  # None unsets it
