"""How MLflow's identifiers, times and statuses map onto chachaml's.

- **Run ids** are the same string: chachaml's run ids are 32 lowercase hex characters
  (``uuid4().hex``), exactly MLflow's format, so a run has one id on every surface.
- **Experiment ids** are chachaml's integer experiment ids as decimal strings, except MLflow's
  default experiment ``"0"``, which is chachaml's ``default`` experiment (where native runs
  without an experiment land); that experiment is always reported as ``"0"``. Experiments are
  still named and found by name everywhere else in chachaml.
- **Times**: MLflow sends and reads milliseconds since the epoch; chachaml keeps seconds.
- **Statuses**: ``RUNNING``/``FINISHED``/``FAILED``/``KILLED`` are ``running``/``completed``/
  ``failed``/``killed``; MLflow's ``SCHEDULED`` is stored as running.
- **Deleted** (MLflow's lifecycle stage) is chachaml's *archived*: kept, out of listings,
  restorable until ``delete_archived`` removes archived runs.
"""

from __future__ import annotations

from datetime import datetime

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import EndStatus, Experiment, RunStatus
from chachaml.store.server_state import ServerStore
from chachaml.tools import experiments as experiment_ops

DEFAULT_EXPERIMENT = "default"  # the client's DEFAULT_EXPERIMENT (chachaml.client.client)
DEFAULT_ID = "0"
TO_MLFLOW: dict[str, str] = {
    "running": "RUNNING",
    "completed": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
    "stopped": "KILLED",  # MLflow has no "stopped": a run stopped on request was killed early
}
FROM_MLFLOW: dict[str, RunStatus] = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "completed",
    "FAILED": "failed",
    "KILLED": "killed",
}
ENDED: dict[str, EndStatus] = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "killed"}


def millis(when: datetime | None) -> int | None:
    """An aware datetime as MLflow's epoch milliseconds."""
    return None if when is None else round(when.timestamp() * 1000)


def seconds(ms: int | None) -> float | None:
    """MLflow's epoch milliseconds as chachaml's epoch seconds."""
    return None if ms is None else ms / 1000.0


def experiment_id(exp: Experiment) -> str:
    """The MLflow id of an experiment (``"0"`` for chachaml's default experiment)."""
    return experiment_ops.mlflow_experiment_id(exp)


def status_of(name: str) -> RunStatus:
    """A run status from MLflow's name; ``InvalidInput`` for one MLflow does not have."""
    found = FROM_MLFLOW.get(name.upper())
    if found is None:
        raise InvalidInput(f"unknown run status {name!r}: one of {', '.join(FROM_MLFLOW)}")
    return found


async def experiment_by_id(store: ServerStore, exp_id: str, brief: bool = True) -> Experiment:
    """The experiment an MLflow id names, deleted or not; ``NotFound`` naming the id if none.

    ``"0"`` is the default experiment, created on first use as MLflow's always exists. The
    id is looked up in the store on every call: another replica may have renamed it.
    ``brief`` (for a name and state, not for showing it): without the run count and last
    activity, which read every run of the experiment.
    """
    if exp_id == DEFAULT_ID:
        try:
            return await experiment_ops.get_experiment(store, DEFAULT_EXPERIMENT)
        except NotFound:
            return await experiment_ops.create_experiment(store, DEFAULT_EXPERIMENT)
    if not exp_id.isdigit() or len(exp_id) > 18:
        raise NotFound(f"no experiment with id {exp_id!r} (experiment ids are decimal numbers)")
    try:
        return await experiment_ops.get_experiment_by_id(store, int(exp_id), brief)
    except NotFound:
        raise NotFound(f"no experiment with id {exp_id!r}") from None


def require_active(exp: Experiment) -> Experiment:
    """``exp`` if it is not deleted; else MLflow's ``INVALID_PARAMETER_VALUE``."""
    if exp.archived:
        raise InvalidInput(
            f"the experiment {experiment_id(exp)} must be in the 'active' state;"
            " it is deleted (restore it first)"
        )
    return exp
