"""Experiment operations."""

from __future__ import annotations

from chachaml import validation as v
from chachaml.errors import InvalidInput
from chachaml.models import Experiment
from chachaml.store.protocol import Store


async def list_experiments(store: Store) -> list[Experiment]:
    """Every experiment with run count and last activity, most recently active first."""
    return await store.list_experiments()


async def create_experiment(
    store: Store, name: str, description: str | None = None, owner: str | None = None
) -> Experiment:
    """Create an experiment, or update the description/owner of an existing one."""
    for field, value in (("description", description), ("owner", owner)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{field} must be a string, got {value!r}")
    return await store.create_experiment(v.name(name, "experiment name"), description, owner)
