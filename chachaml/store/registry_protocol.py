"""The ``RegistryStore`` protocol: the model registry part of every backend.

Contract for implementers (on top of the ``Store`` contract):

- Each write method is one transaction: it happens completely or not at all, and
  concurrent writers (tasks, threads or processes) are serialised or isolated so the
  invariants below hold whatever the interleaving.
- At most one version of a model is in stage ``production``, enforced by the database
  (a unique index), not only by code. Putting a version into ``production`` (by
  registering or promoting it) archives the previous production version in the same
  transaction, and both stage changes are recorded in the audit trail.
- Every stage change (registration included, from ``None``) and every alias set, moved
  or removed appends an audit event naming who, when, from what and to what.
- Version numbers are 1, 2, 3, ... per model, assigned in the registering transaction.
- A version copies its artifact's URI, hash and serializer when registered: later
  re-logging of that artifact name does not change it.
- A run that a version came from is never archived (``archive_runs`` skips it) and
  cannot be deleted, so the version's artifact stays.
- A model, version, alias, run or artifact that does not exist raises ``NotFound``
  naming it and listing what does exist; registering from an archived run raises
  ``Conflict``. A failed write changes nothing.
- Versions are listed newest first; audit events oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chachaml.records.registry import Model, ModelDetail, ModelVersion, NewModelVersion, Stage


class RegistryStore(Protocol):
    """Async persistence for registered models, their versions, aliases, tags and history."""

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Add the next version of a model (creating the model) from an artifact of a run."""
        ...

    async def list_models(self) -> list[Model]:
        """Every model, most recently updated first."""
        ...

    async def get_model(self, name: str) -> ModelDetail:
        """A model with its versions, aliases, tags, note and audit trail."""
        ...

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions (only those in ``stage`` if given), newest first."""
        ...

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version; ``NotFound`` listing the model's versions if absent."""
        ...

    async def promote_model_version(
        self, name: str, version: int, stage: Stage, user: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to a stage (archiving the previous production version if needed).

        Promoting a version to the stage it is in already changes nothing.
        """
        ...

    async def set_model_alias(self, name: str, alias: str, version: int, user: str) -> None:
        """Point an alias at a version (moving it if it pointed elsewhere)."""
        ...

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Remove an alias; ``NotFound`` listing the model's aliases if absent."""
        ...

    async def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags on a model."""
        ...

    async def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str]
    ) -> None:
        """Set (or overwrite) tags on a model version."""
        ...

    async def set_model_note(self, name: str, note: str) -> None:
        """Replace the model's markdown note."""
        ...
