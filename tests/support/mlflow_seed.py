"""A real MLflow store made by the ``mlflow`` package, for the importer's tests.

Built through ``MlflowClient`` with explicit URIs (no ``mlflow.set_tracking_uri``), with
MLflow's own warnings (deprecated stages, the file store) silenced while it is made.
:data:`EXPECTED` is what an import of all of it must hold.

Beside MLflow 2's run-artifact models, one model is logged and registered the MLflow 3 way:
the calls ``mlflow.<flavor>.log_model`` makes inside a run (a logged model of the run, its
files in the model's own artifact location, finalized, named as the run's output) and
``mlflow.register_model("models:/<model id>", ...)`` then sends.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chachaml.tools.mlflow_source import mlflow_defaults

LOSS_POINTS = 1000


@dataclass
class Seeded:
    """The ids and values the tests look up after an import."""

    uri: str
    runs: dict[str, str] = field(default_factory=dict)  # a label -> MLflow run id
    deleted_run: str = ""
    logged_model: str = ""  # MLflow's id of the MLflow 3 logged model
    second_net: str = ""  # MLflow's id of another model named "net" on the same run
    runless: str = ""  # MLflow's id of a model logged outside any run


# what chachaml must hold after importing everything (deleted runs and experiments left out)
EXPECTED = {
    "experiments": 3,  # vision, nlp and MLflow's Default (chachaml's default)
    "runs": 6,
    "params": 6,
    "tags": 1,  # team; name, user, note and parent are run fields
    "metric_points": LOSS_POINTS + 2 + 2 + 1 + 1,
    "datasets": 1,
    # run files, the logged models' (copied onto their runs): net's 2, a second net's 1 and
    # the run-less model's 1
    "artifacts": 5 + 2 + 1 + 1,
    "logged_models": 3,
    "models": 2,  # classifier, and standalone (from the run-less model)
    "versions": 4,
    "aliases": 1,
}
# of it, the experiment "vision" alone
VISION = {
    "experiments": 1,
    "runs": 5,
    "params": 5,
    "tags": 1,
    "metric_points": LOSS_POINTS + 2 + 2 + 1,
    "datasets": 1,
    "artifacts": 5 + 2 + 1 + 1,
    "logged_models": 3,
    "models": 2,
    "versions": 4,
    "aliases": 1,
}


def _files(folder: Path) -> Path:
    (folder / "plots" / "deep").mkdir(parents=True)
    (folder / "plots" / "loss.txt").write_text("loss curve\n")
    (folder / "plots" / "deep" / "inner.json").write_text('{"nested": true}\n')
    model = folder / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (model / "model.pkl").write_bytes(bytes(range(256)) * 40)
    return folder


def seed_mlflow(uri: str, artifact_root: Path | None, scratch: Path) -> Seeded:
    """Fill an empty MLflow store at ``uri`` (artifacts under ``artifact_root``; ``None``: the
    store's default, a tracking server's proxied ``mlflow-artifacts:``)."""
    with warnings.catch_warnings(), mlflow_defaults(uri):
        warnings.simplefilter("ignore")
        return _seed(uri, artifact_root, scratch)


def _seed(uri: str, artifact_root: Path | None, scratch: Path) -> Seeded:
    from mlflow import MlflowClient
    from mlflow.entities import (
        Dataset,
        DatasetInput,
        InputTag,
        LoggedModelOutput,
        LoggedModelStatus,
        Metric,
        Param,
        RunTag,
    )

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    seeded = Seeded(uri)
    base = 1_700_000_000_000

    def location(name: str) -> str | None:
        return None if artifact_root is None else (artifact_root / name).as_uri()

    vision = client.create_experiment(
        "vision", artifact_location=location("vision"),
        tags={"mlflow.note.content": "image models"},
    )  # fmt: skip
    nlp = client.create_experiment("nlp", artifact_location=location("nlp"))
    gone = client.create_experiment("abandoned")
    client.delete_experiment(gone)

    sweep = client.create_run(
        vision, start_time=base, run_name="sweep",
        tags={"mlflow.user": "ada", "mlflow.note.content": "## the sweep\nthree trials"},
    )  # fmt: skip
    rid = sweep.info.run_id
    seeded.runs["sweep"] = rid
    client.log_batch(
        rid,
        params=[Param("lr", "0.01"), Param("optimizer", "adam")],
        tags=[RunTag("team", "vision")],
    )
    losses = [Metric("loss", math.exp(-i / 300), base + 10 * i, i) for i in range(LOSS_POINTS)]
    for start in range(0, LOSS_POINTS, 500):  # MLflow takes at most 1,000 metrics a batch
        client.log_batch(rid, metrics=losses[start : start + 500])
    client.log_metric(rid, "acc", 0.5, timestamp=base + 5, step=0)
    client.log_metric(rid, "acc", 0.75, timestamp=base + 6, step=1)
    files = _files(scratch / "files")
    client.log_artifact(rid, str(files / "plots" / "loss.txt"), "plots")
    client.log_artifacts(rid, str(files / "plots" / "deep"), "plots/deep")
    client.log_artifacts(rid, str(files / "model"), "model")
    dataset = Dataset(  # as mlflow.data.from_pandas(...)._to_mlflow_entity() makes it
        name="digits",
        digest="b064d295",
        source_type="s3",
        source='{"uri": "s3://bucket/digits.csv"}',
        schema='{"mlflow_colspec": [{"type": "double", "name": "x", "required": true}]}',
        profile='{"num_rows": 3, "num_elements": 6}',
    )
    client.log_inputs(
        rid,
        [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])],
    )
    client.set_terminated(rid, "FINISHED", end_time=base + 60_000)

    for i, status in enumerate(["FINISHED", "FAILED"]):
        child = client.create_run(
            vision, start_time=base + 1000 * (i + 1), run_name=f"trial-{i}",
            tags={"mlflow.parentRunId": rid, "mlflow.user": "ada"},
        )  # fmt: skip
        seeded.runs[f"trial-{i}"] = child.info.run_id
        client.log_param(child.info.run_id, "depth", str(i + 3))
        client.log_metric(child.info.run_id, "acc", 0.8 + i / 10, timestamp=base, step=0)
        client.set_terminated(child.info.run_id, status, end_time=base + 2000 * (i + 1))

    second = client.create_run(vision, start_time=base + 9000, run_name="retrain")
    seeded.runs["retrain"] = second.info.run_id
    client.log_param(second.info.run_id, "lr", "0.02")
    client.log_artifact(second.info.run_id, str(files / "model" / "MLmodel"), "model")
    client.set_terminated(second.info.run_id, "FINISHED", end_time=base + 9500)

    dropped = client.create_run(vision, start_time=base + 100, run_name="dropped")
    seeded.deleted_run = dropped.info.run_id
    client.log_param(dropped.info.run_id, "lr", "1.0")
    client.delete_run(dropped.info.run_id)

    other = client.create_run(nlp, start_time=base + 20_000, run_name="bert")
    seeded.runs["bert"] = other.info.run_id
    client.log_param(other.info.run_id, "layers", "12")
    client.log_metric(other.info.run_id, "ppl", 12.5, timestamp=base + 20_001, step=3)
    # still RUNNING in MLflow: imported as running (and read as killed once its heartbeat is old)

    client.create_registered_model(
        "classifier", tags={"owner": "ada"}, description="digits classifier"
    )
    v1 = client.create_model_version(
        "classifier", f"runs:/{rid}/model", run_id=rid, tags={"reviewed": "yes"}
    )
    v2 = client.create_model_version(
        "classifier",
        f"{second.info.artifact_uri}/model",
        run_id=second.info.run_id,
        description="retrained",
    )
    client.transition_model_version_stage("classifier", v1.version, "Production")
    client.transition_model_version_stage("classifier", v2.version, "Staging")
    client.set_registered_model_alias("classifier", "champion", v1.version)

    # MLflow 3: mlflow.sklearn.log_model(..., name="net") in a run, then register_model
    fresh = client.create_run(vision, start_time=base + 12_000, run_name="mlflow3")
    rid3 = seeded.runs["mlflow3"] = fresh.info.run_id
    client.log_metric(rid3, "acc", 0.9, timestamp=base + 12_001, step=0)
    net = client.create_logged_model(
        vision, name="net", source_run_id=rid3, model_type="sklearn",
        params={"C": "1.0"}, tags={"stage": "candidate"},
    )  # fmt: skip
    seeded.logged_model = net.model_id
    client.log_model_artifacts(net.model_id, str(files / "model"))  # MLmodel, model.pkl
    client.finalize_logged_model(net.model_id, LoggedModelStatus.READY)
    client.log_outputs(rid3, [LoggedModelOutput(net.model_id, 0)])
    # a second model of the same name on the same run (its own files, never mixed with net's)
    again = client.create_logged_model(vision, name="net", source_run_id=rid3)
    seeded.second_net = again.model_id
    other_files = scratch / "other-net"
    other_files.mkdir()
    (other_files / "MLmodel").write_text("flavors:\n  other: {}\n")
    client.log_model_artifacts(again.model_id, str(other_files))
    client.finalize_logged_model(again.model_id, LoggedModelStatus.READY)
    client.set_terminated(rid3, "FINISHED", end_time=base + 13_000)
    source = f"models:/{net.model_id}"
    client.create_model_version("classifier", source, model_id=net.model_id)  # no run_id
    # MLflow 3: a model logged outside any run (mlflow.initialize_logged_model), registered
    free = client.create_logged_model(vision, name="free", model_type="custom")
    seeded.runless = free.model_id
    free_files = scratch / "free"
    free_files.mkdir()
    (free_files / "MLmodel").write_text("flavors:\n  free: {}\n")
    client.log_model_artifacts(free.model_id, str(free_files))
    client.finalize_logged_model(free.model_id, LoggedModelStatus.READY)
    client.create_registered_model("standalone")
    client.create_model_version("standalone", f"models:/{free.model_id}", model_id=free.model_id)
    return seeded


def mlflow_points(uri: str, run_id: str, key: str) -> list[Any]:
    """A metric's history as MLflow answers it (steps, values, timestamps in ms)."""
    from mlflow import MlflowClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value, m.timestamp) for m in history)
