"""chachaml: experiment tracking and a model registry that people and AI agents both use.

``import chachaml as ml`` gives the tracking API of a default :class:`Client`, configured
from ``CHACHAML_STORE`` / ``CHACHAML_ARTIFACTS`` / ``CHACHA_USER`` or :func:`use_store`::

    with ml.run(experiment="mnist", name="baseline") as run:
        ml.log_params({"lr": 0.01})
        for step in range(100):
            ml.log_metric("loss", 1 / (step + 1), step=step)
"""

from __future__ import annotations

from chachaml.client.alerts import (
    Alerts,
    alert_history,
    alerts,
    check_alerts,
    delete_alert,
    mute_alert,
    send_test_alert,
    set_drop_alert,
    set_silent_alert,
    set_stale_alert,
    set_threshold_alert,
    unmute_alert,
)
from chachaml.client.client import Client
from chachaml.client.default import default_client
from chachaml.client.experiments import (
    ExperimentEdits,
    archive_experiment,
    delete_experiment_tag,
    rename_experiment,
    restore_experiment,
    set_experiment_tag,
)
from chachaml.client.pipelines.dask import DaskExecutor
from chachaml.client.pipelines.pipeline import (
    Pipeline,
    PipelineFailed,
    PipelineResult,
    Pipelines,
    Step,
    StepContext,
    pipeline,
    pipelines,
    resume_pipeline,
    run_pipeline,
)
from chachaml.client.registry import (
    Registry,
    delete_alias,
    diff_versions,
    load_model,
    model,
    model_version,
    model_versions,
    models,
    promote,
    register_model,
    set_alias,
    set_model_note,
    set_model_tag,
    set_model_version_tag,
)
from chachaml.client.run import ActiveRun
from chachaml.client.stops import Stops, on_stop, should_stop, stop_run
from chachaml.client.subscriptions import Subscriptions, subscribe, subscriptions, unsubscribe
from chachaml.errors import (
    ChachamlError,
    Conflict,
    InvalidInput,
    NoActiveRun,
    NotFound,
    SchemaTooNew,
    StoreUnavailable,
)
from chachaml.records.alerts import Alert, AlertEvent, AlertTrial
from chachaml.records.runs import (
    Artifact,
    BestRun,
    Comparison,
    Dataset,
    Experiment,
    MetricSeries,
    MetricSummary,
    Run,
    RunInfo,
    Runs,
    StopRequest,
    Table,
)
from chachaml.records.subscriptions import Subscription
from chachaml.settings import Settings

__version__ = "0.1.0"

_default = default_client()

use_store = _default.use_store
run = _default.run
start_run = _default.start_run
end_run = _default.end_run
active_run = _default.active_run
log_metric = _default.log_metric
log_metrics = _default.log_metrics
log_param = _default.log_param
log_params = _default.log_params
set_tag = _default.set_tag
set_tags = _default.set_tags
log_dataset = _default.log_dataset
log_artifact = _default.log_artifact
log_file = _default.log_file
log_table = _default.log_table
set_run_tag = _default.set_run_tag
set_note = _default.set_note
load_artifact = _default.load_artifact
list_artifacts = _default.list_artifacts
runs = _default.runs
get_run = _default.get_run
last_run = _default.last_run
search_runs = _default.search_runs
best_run = _default.best_run
compare_runs = _default.compare_runs
export_runs = _default.export_runs
metric_history = _default.metric_history
experiments = _default.experiments
create_experiment = _default.create_experiment
tracked = _default.tracked
batched_metrics = _default.batched_metrics
flush = _default.flush
current_user = _default.current_user
my_runs = _default.my_runs
my_last_run = _default.my_last_run
archive_runs = _default.archive_runs
delete_archived = _default.delete_archived
arun = _default.arun
astart_run = _default.astart_run
aflush = _default.aflush
aget_run = _default.aget_run
aruns = _default.aruns
asearch_runs = _default.asearch_runs
abest_run = _default.abest_run
acompare_runs = _default.acompare_runs


__all__ = [
    "ActiveRun",
    "Alert",
    "AlertEvent",
    "AlertTrial",
    "Alerts",
    "Artifact",
    "BestRun",
    "ChachamlError",
    "Client",
    "Comparison",
    "Conflict",
    "DaskExecutor",
    "Dataset",
    "Experiment",
    "ExperimentEdits",
    "InvalidInput",
    "MetricSeries",
    "MetricSummary",
    "NoActiveRun",
    "NotFound",
    "Pipeline",
    "PipelineFailed",
    "PipelineResult",
    "Pipelines",
    "Registry",
    "Run",
    "RunInfo",
    "Runs",
    "SchemaTooNew",
    "Settings",
    "Step",
    "StepContext",
    "StopRequest",
    "Stops",
    "StoreUnavailable",
    "Subscription",
    "Subscriptions",
    "Table",
    "__version__",
    "abest_run",
    "acompare_runs",
    "active_run",
    "aflush",
    "aget_run",
    "alert_history",
    "alerts",
    "archive_experiment",
    "archive_runs",
    "arun",
    "aruns",
    "asearch_runs",
    "astart_run",
    "batched_metrics",
    "best_run",
    "check_alerts",
    "compare_runs",
    "create_experiment",
    "current_user",
    "default_client",
    "delete_alert",
    "delete_alias",
    "delete_archived",
    "delete_experiment_tag",
    "diff_versions",
    "end_run",
    "experiments",
    "export_runs",
    "flush",
    "get_run",
    "last_run",
    "list_artifacts",
    "load_artifact",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_file",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "metric_history",
    "model",
    "model_version",
    "model_versions",
    "models",
    "mute_alert",
    "my_last_run",
    "my_runs",
    "on_stop",
    "pipeline",
    "pipelines",
    "promote",
    "register_model",
    "rename_experiment",
    "restore_experiment",
    "resume_pipeline",
    "run",
    "run_pipeline",
    "runs",
    "search_runs",
    "send_test_alert",
    "set_alias",
    "set_drop_alert",
    "set_experiment_tag",
    "set_model_note",
    "set_model_tag",
    "set_model_version_tag",
    "set_note",
    "set_run_tag",
    "set_silent_alert",
    "set_stale_alert",
    "set_tag",
    "set_tags",
    "set_threshold_alert",
    "should_stop",
    "start_run",
    "stop_run",
    "subscribe",
    "subscriptions",
    "tracked",
    "unmute_alert",
    "unsubscribe",
    "use_store",
]
