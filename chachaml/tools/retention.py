"""Retention: archiving old runs, and deleting archived ones with the files only they used.

Archiving hides runs from listings and keeps everything; deleting is the one operation that
removes a run's rows and then its artifact files, so it is kept apart from the run writes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from chachaml.errors import InvalidInput, StoreUnavailable
from chachaml.records import validation as v
from chachaml.store.artifacts import ArtifactStore, sweep_unused
from chachaml.store.protocol import Store


def days_ago(older_than_days: float) -> float:
    """The epoch time ``older_than_days`` days before now (a non-negative number)."""
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float):
        raise InvalidInput(f"older_than_days must be a number, got {older_than_days!r}")
    if older_than_days < 0:
        raise InvalidInput(f"older_than_days must be >= 0, got {older_than_days!r}")
    return (datetime.now(UTC) - timedelta(days=older_than_days)).timestamp()


async def archive_runs(store: Store, started_before: float, experiment: str | None = None) -> int:
    """Archive ended runs started before ``started_before`` (epoch seconds); returns how many."""
    if not isinstance(started_before, int | float) or not math.isfinite(started_before):
        raise InvalidInput(f"started_before must be epoch seconds, got {started_before!r}")
    return await store.archive_runs(started_before, v.filter_text(experiment, "experiment"))


async def delete_archived(store: Store, artifacts: ArtifactStore | None) -> int:
    """Delete archived runs with their rows, then the artifact files no other run or model uses.

    Returns how many runs went. Each file is checked again right before it goes (see
    ``sweep_unused``); without an artifact store to delete them from, ``StoreUnavailable``
    once the rows are gone.
    """
    deleted, uris = await store.delete_archived()
    if uris:
        if artifacts is None:
            raise StoreUnavailable("this server has no artifact store")
        await sweep_unused(store, artifacts, uris)
    return deleted
