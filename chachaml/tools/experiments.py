"""Experiment operations."""

from __future__ import annotations

from chachaml.records import validation as v
from chachaml.records.runs import Experiment
from chachaml.store.protocol import Store


async def list_experiments(store: Store) -> list[Experiment]:
    """Every experiment with run count and last activity, most recently active first."""
    return await store.list_experiments()


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
