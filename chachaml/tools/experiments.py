"""Experiment operations."""

from __future__ import annotations

import difflib

from chachaml.errors import InvalidInput, NotFound
from chachaml.records import validation as v
from chachaml.records.runs import Experiment, RunQuery
from chachaml.settings import redact_url
from chachaml.store.protocol import Store
from chachaml.store.server_state import ServerStore

DEFAULT_EXPERIMENT = "default"  # where runs without an experiment land (MLflow's "0")


def mlflow_experiment_id(exp: Experiment) -> str:
    """An experiment's id on MLflow's protocol: ``"0"`` for the default one, else its number."""
    return "0" if exp.name == DEFAULT_EXPERIMENT else str(exp.id)


async def list_experiments(store: Store) -> list[Experiment]:
    """Every experiment with run count and last activity, most recently active first."""
    return await store.list_experiments()


async def get_experiment(store: Store, name: str) -> Experiment:
    """One experiment by name, with run count and last activity; ``NotFound`` if absent."""
    return await store.get_experiment(v.name(name, "experiment name"))


async def create_experiment(
    store: Store, name: str, description: str | None = None, owner: str | None = None
) -> Experiment:
    """Create an experiment, or update the description/owner of an existing one.

    The description holds at most 100,000 characters, the owner a name's 250.
    """
    return await store.create_experiment(
        v.name(name, "experiment name"),
        v.optional_text(description, "description"),
        v.optional_text(owner, "owner", v.MAX_KEY),
    )


async def get_experiment_by_id(
    store: ServerStore, experiment_id: int, brief: bool = False
) -> Experiment:
    """One experiment by its id (MLflow names experiments by id), archived or not.

    ``brief``: without its run count and last activity, which cost a read of every run.
    """
    return await store.get_experiment_by_id(_stored(experiment_id), brief)


async def list_archived_experiments(store: ServerStore) -> list[Experiment]:
    """Every archived experiment (MLflow's deleted ones), most recently active first."""
    return await store.list_archived_experiments()


async def experiment_names(store: ServerStore) -> dict[int, str]:
    """Each experiment not archived, id to name, without reading any run."""
    return await store.experiment_names()


Ref = str | int  # an experiment by name, or by id (MLflow's protocol names them by id)


def _stored(experiment_id: int) -> int:
    """``experiment_id`` if a database could hold it (a 64-bit integer), else ``NotFound``.

    SQLite and PostgreSQL would raise an integer overflow instead: a 500, not a 404.
    """
    if not 0 <= experiment_id < 2**63:
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment_id


async def _id(store: Store, experiment: Ref) -> int:
    """The id of an experiment named by name or id (``NotFound`` for an unknown one)."""
    if isinstance(experiment, int):
        return _stored(experiment)
    return (await store.get_experiment(v.name(experiment, "experiment name"))).id


async def rename_experiment(
    store: Store, experiment: Ref, name: str, user: str | None = None
) -> None:
    """Give an experiment another name; ``Conflict`` if an experiment holds it already.

    The default experiment keeps its name: it is where runs without one land.
    """
    new = v.name(name, "experiment name")
    if experiment == DEFAULT_EXPERIMENT:
        raise InvalidInput(f"the {DEFAULT_EXPERIMENT!r} experiment keeps its name")
    await store.rename_experiment(await _id(store, experiment), new, user)


async def archive_experiment(store: Store, experiment: Ref, user: str | None = None) -> None:
    """Archive an experiment and its runs (MLflow's delete): out of listings, restorable."""
    await store.set_experiment_archived(await _id(store, experiment), True, user)


async def restore_experiment(store: Store, experiment: Ref, user: str | None = None) -> None:
    """Bring an archived experiment and its runs back into listings."""
    await store.set_experiment_archived(await _id(store, experiment), False, user)


async def set_experiment_tag(
    store: Store, experiment: Ref, key: str, value: str, user: str | None = None
) -> None:
    """Set one tag of an experiment (values up to 5,000 characters, as MLflow's)."""
    k, text = v.key(key, "tag key"), v.text(value, "tag value", v.MAX_TAG_VALUE)
    await store.set_experiment_tag(await _id(store, experiment), k, text, user)


async def delete_experiment_tag(
    store: Store, experiment: Ref, key: str, user: str | None = None
) -> None:
    """Remove one tag of an experiment; ``NotFound`` if it has no such tag."""
    await store.delete_experiment_tag(await _id(store, experiment), v.key(key, "tag key"), user)


async def why_no_runs(store: Store, experiment: str | None = None) -> str | None:
    """Why a run listing came back empty, when the reason is not the filter's values.

    An empty store or an experiment that does not exist is usually a wrong store URL or a
    typo, not an answer: callers append this to "no runs match" so a person or an agent
    learns it (with "did you mean" for a near experiment name).
    """
    if experiment is not None:
        names = [e.name for e in await store.list_experiments()]
        if experiment not in names:
            if not names:
                return f"the store {redact_url(store.url)} holds no runs yet"
            close = difflib.get_close_matches(experiment, names, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            return f"there is no experiment {experiment!r}{hint}"
        return None
    if await store.count_runs(RunQuery(include_archived=True)) == 0:
        return f"the store {redact_url(store.url)} holds no runs yet"
    return None


async def why_no_metric(store: Store, metric: str, experiment: str | None = None) -> str | None:
    """Why no run has logged ``metric``: the store or experiment, else a near metric name.

    The names come from the latest values of the newest 200 runs (of the experiment), which
    is where a misspelt metric's right name is.
    """
    why = await why_no_runs(store, experiment)
    if why is not None:
        return why
    recent = await store.query_runs(RunQuery(experiment=experiment, limit=200))
    known = sorted({k for r in recent for k in r.metrics})
    close = difflib.get_close_matches(metric, known, n=3, cutoff=0.6)
    if close:
        return f"did you mean {', '.join(repr(c) for c in close)}?"
    return None
