"""Writes that make a store emit every event type it sends, each naming a test's token."""

from __future__ import annotations

import time

from chachaml.records.alerts import NewAlert, NewAlertEvent
from chachaml.records.pipelines import NewPipeline, NewPipelineStep
from chachaml.records.registry import NewModelVersion
from chachaml.records.runs import ArtifactRecord, NewRun
from chachaml.store import ServerStore
from chachaml.store.codec import make_chunk
from tests.support.remote_server import stored_object

RESERVED = {"run.stop_requested"}  # documented, not sent yet


def new_run(run_id: str, experiment: str, **changes: object) -> NewRun:
    fields: dict[str, object] = {"id": run_id, "experiment": experiment, "name": run_id,
                                 "created_by": "alice", "started_at": time.time(),
                                 "heartbeat_timeout": 60.0}  # fmt: skip
    return NewRun.model_validate({**fields, **changes})


async def write_every_type(store: ServerStore, token: str) -> None:
    """Runs, metrics, the registry, a pipeline, an alert, a stale run and experiment edits, all
    named ``token``."""
    run = f"{token}-run"
    await store.create_run(new_run(run, token))
    await store.set_tags(run, {"lr": "0.1"}, user="bob")
    await store.set_note(run, "first try", user="bob")
    await store.log_metrics([make_chunk(run, "loss", [(0, 1.0, 1.0), (1, 0.5, 2.0)])])
    obj = await stored_object(store, b"weights")
    await store.add_artifact(ArtifactRecord(
        run_id=run, name="model", content_type="application/octet-stream", serializer="bytes",
        size=obj.size, sha256=obj.sha256, uri=obj.uri, created_at=time.time(),
    ))  # fmt: skip
    await store.end_run(run, "completed", None, time.time())
    new = NewModelVersion(model=token, run_id=run, artifact="model", created_by="alice",
                          stage="production")  # fmt: skip
    await store.register_model_version(new)
    await store.register_model_version(new)  # archives version 1: a stage change
    await store.set_model_alias(token, "champion", 2, "alice")
    await store.delete_model_alias(token, "champion", "bob")
    pipe_run, step_run = f"{token}-pipe", f"{token}-step"
    await store.create_run(new_run(pipe_run, token))
    await store.create_run(new_run(step_run, token))
    await store.create_pipeline(NewPipeline(
        id=token, name="flow", run_id=pipe_run, created_by="alice", started_at=time.time(),
        max_parallel=1, steps=[NewPipelineStep(name="prep")],
    ))  # fmt: skip
    await store.start_pipeline_step(token, "prep", step_run, 1, time.time())
    await store.end_pipeline_step(token, "prep", "completed", time.time())
    await store.end_pipeline(token, "completed", None, time.time())
    await store.set_alert(NewAlert(name=token, kind="threshold", metric_key="loss", op=">",
                                   threshold=0.1, created_by="alice"))  # fmt: skip
    await store.fire_alert(token, NewAlertEvent(
        subject=step_run, run_id=step_run, experiment=token, message="loss high",
        fired_at=time.time(), webhook=False,
    ))  # fmt: skip
    stale = f"{token}-stale"
    await store.create_run(new_run(stale, token, started_at=time.time() - 100,
                                   heartbeat_timeout=1.0))  # fmt: skip
    await store.sweep_killed(time.time())
    exp = (await store.get_experiment(token)).id  # its edits, last: the runs above name it
    await store.set_experiment_tag(exp, "team", "ml", user="bob")
    await store.delete_experiment_tag(exp, "team", user="bob")
    await store.set_experiment_archived(exp, True, user="bob")
    await store.set_experiment_archived(exp, False, user="bob")
    await store.rename_experiment(exp, f"{token}-renamed", user="bob")
