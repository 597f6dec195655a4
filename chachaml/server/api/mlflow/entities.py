"""chachaml's records in MLflow's JSON (the protobuf JSON of ``service.proto``), and back.

A run's name, creator, note and parent are chachaml fields; MLflow carries them as the tags
``mlflow.runName``, ``mlflow.user``, ``mlflow.note.content`` and ``mlflow.parentRunId``. On
the way in those tags set the fields (:data:`FIELD_TAGS`), on the way out the fields are
shown as those tags, so either side reads what the other wrote.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from chachaml.records.runs import Dataset, Experiment, MetricSummary, ParamValue, Run, RunInfo
from chachaml.server.api.mlflow.ids import TO_MLFLOW, experiment_id, millis

RUN_NAME = "mlflow.runName"
USER = "mlflow.user"
NOTE = "mlflow.note.content"
PARENT = "mlflow.parentRunId"
FIELD_TAGS = frozenset({RUN_NAME, USER, NOTE, PARENT})
CONTEXT = "mlflow.data.context"  # a dataset input's role (training, eval, ...)
ARTIFACT_ROOT = "mlflow-artifacts:/"


def number(value: float | None) -> float | str:
    """A double as protobuf JSON writes it: NaN and infinities as strings."""
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def param_text(value: ParamValue) -> str:
    """A param as MLflow's text: natively logged ``0.1``/``True``/``None`` read as Python prints."""
    return value if isinstance(value, str) else str(value)


def pairs(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"k": "v"}`` as MLflow's ``[{"key": "k", "value": "v"}]``."""
    return [{"key": k, "value": v} for k, v in mapping.items()]


def experiment_tags(exp: Experiment) -> dict[str, str]:
    """An experiment's tags as MLflow shows them: its description as ``mlflow.note.content``."""
    tags = dict(exp.tags)
    if exp.description:
        tags[NOTE] = exp.description
    return tags


def experiment(exp: Experiment) -> dict[str, Any]:
    """An experiment as MLflow's ``Experiment`` message (archived is MLflow's deleted)."""
    exp_id = experiment_id(exp)
    tags = experiment_tags(exp)
    updated = exp.last_activity or exp.created_at
    return {
        "experiment_id": exp_id,
        "name": exp.name,
        "artifact_location": f"{ARTIFACT_ROOT}{exp_id}",
        "lifecycle_stage": "deleted" if exp.archived else "active",
        "creation_time": millis(exp.created_at),
        "last_update_time": millis(updated),
        "tags": pairs(tags),
    }


def run_tags(run: RunInfo, note: str | None = None) -> dict[str, str]:
    """The run's tags with its fields shown as MLflow's system tags."""
    tags = dict(run.tags)
    tags[USER] = run.created_by
    if run.name is not None:
        tags[RUN_NAME] = run.name
    if run.parent_id is not None:
        tags[PARENT] = run.parent_id
    if note:
        tags[NOTE] = note
    return tags


def run_info(run: RunInfo, exp_id: str) -> dict[str, Any]:
    """A run as MLflow's ``RunInfo`` message."""
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "experiment_id": exp_id,
        "user_id": run.created_by,
        "status": TO_MLFLOW[run.status],
        "start_time": millis(run.started_at),
        "artifact_uri": f"{ARTIFACT_ROOT}{exp_id}/{run.id}/artifacts",
        "lifecycle_stage": "deleted" if run.archived else "active",
    }
    if run.name is not None:
        info["run_name"] = run.name
    if run.ended_at is not None:
        info["end_time"] = millis(run.ended_at)
    return info


def latest_metrics(
    run: RunInfo, summaries: Mapping[str, MetricSummary] | None
) -> list[dict[str, Any]]:
    """Each metric's latest point; without summaries (listings) step 0 at the run's start."""
    if summaries is not None:
        return [
            {
                "key": s.key,
                "value": number(s.last),
                "timestamp": millis(s.timestamp),
                "step": s.step,
            }
            for s in summaries.values()
        ]
    at = millis(run.started_at)
    return [
        {"key": k, "value": number(v), "timestamp": at, "step": 0} for k, v in run.metrics.items()
    ]


def dataset_input(ds: Dataset) -> dict[str, Any]:
    """A dataset record as MLflow's ``DatasetInput`` (its role as ``mlflow.data.context``)."""
    extra = ds.extra
    body: dict[str, Any] = {
        "name": ds.name or ds.role,
        "digest": ds.digest or "",
        "source_type": str(extra.get("source_type") or "chachaml"),
        "source": ds.source or "",
    }
    schema = extra.get("schema")
    if schema is None and ds.features:
        schema = json.dumps({"features": ds.features})
    if schema is not None:
        body["schema"] = schema if isinstance(schema, str) else json.dumps(schema)
    profile = extra.get("profile")
    if profile is None and (ds.n_rows is not None or ds.n_cols is not None):
        profile = json.dumps({"num_rows": ds.n_rows, "num_elements": ds.n_cols})
    if profile is not None:
        body["profile"] = profile if isinstance(profile, str) else json.dumps(profile)
    tags = {CONTEXT: ds.role, **{str(k): str(v) for k, v in extra.get("tags", {}).items()}}
    return {"tags": pairs(tags), "dataset": body}


def dataset_of(given: Mapping[str, Any]) -> Dataset:
    """MLflow's ``DatasetInput`` as a chachaml dataset record (what it cannot map in ``extra``)."""
    body = given.get("dataset") or {}
    tags = {t["key"]: t.get("value", "") for t in given.get("tags") or []}
    role = tags.pop(CONTEXT, None) or "input"
    extra: dict[str, Any] = {"source_type": body.get("source_type") or "unknown"}
    for field in ("schema", "profile"):
        if body.get(field):
            extra[field] = body[field]
    if tags:
        extra["tags"] = tags
    return Dataset(
        role=role,
        name=body.get("name") or None,
        source=body.get("source") or None,
        digest=body.get("digest") or None,
        extra=extra,
    )


def run(
    found: RunInfo,
    exp_id: str,
    params: Mapping[str, ParamValue],
    summaries: Mapping[str, MetricSummary] | None = None,
) -> dict[str, Any]:
    """A run as MLflow's ``Run`` message: info, data (latest metrics, params, tags), inputs."""
    note = found.note if isinstance(found, Run) else None
    data = {
        "metrics": latest_metrics(found, summaries),
        "params": [{"key": k, "value": param_text(v)} for k, v in params.items()],
        "tags": pairs(run_tags(found, note)),
    }
    inputs = [dataset_input(d) for d in found.datasets] if isinstance(found, Run) else []
    return {
        "info": run_info(found, exp_id),
        "data": data,
        "inputs": {"dataset_inputs": inputs},
    }
