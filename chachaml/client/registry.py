"""The model registry from Python: register versions, promote them, alias them, load them.

``chachaml.client.registry.register_model(...)`` and friends act through the default client;
``Registry(client)`` binds the same API to another :class:`~chachaml.Client`.

Loading a model is an explicit trust decision, by format:

- ``skops`` (what the sklearn integration stores) trusts types, never functions: skops'
  defaults, scikit-learn's estimator classes and a few helper classes load as they are;
  anything else, functions and ``sklearn.tree._tree.Tree`` (every tree model) included, is
  refused unless named in ``trusted=[...]`` (see :mod:`chachaml.client.integrations.sklearn`).
- ``pickle`` runs code when loaded, so it only loads with ``allow_pickle=True``.
- Everything else decodes as artifacts do: JSON, numpy arrays, tables, text; files logged
  with ``log_file`` come back as bytes.

Before anything is decoded, the bytes are checked against the sha256 recorded when the
version was registered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chachaml.client.default import ClientBound
from chachaml.errors import NoActiveRun
from chachaml.records.registry import Model, ModelDetail, ModelVersion, VersionDiff
from chachaml.store.artifacts.serializers import decode
from chachaml.tools import registry as ops


def decode_model(
    found: ModelVersion, data: bytes, *, allow_pickle: bool = False, trusted: Sequence[str] = ()
) -> Any:
    """Turn a version's verified bytes into the model, by the serializer it was stored with."""
    return decode(data, found.serializer, allow_pickle=allow_pickle, trusted=trusted)


class Registry(ClientBound):
    """The registry API bound to a client (the default client when none is given)."""

    def register_model(
        self,
        name: str,
        artifact: str = "model",
        run_id: str | None = None,
        stage: str = "none",
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Register the next version of ``name`` from an artifact of a run (the current one).

        A missing artifact raises ``NotFound`` listing the run's artifacts, and says so when
        the argument looks like a file path (log the file first, then register its name).
        """
        client = self.client
        if run_id is None:
            active = client.active_run()
            if active is None:
                raise NoActiveRun(
                    "register_model needs run_id=... or an active run whose artifact to register"
                )
            run_id = active.id
        return client.op(
            ops.register_model,
            name,
            run_id,
            artifact,
            client.current_user(),
            stage,
            description,
            tags,
        )

    def promote(
        self, name: str, version: int, stage: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to a stage (none, staging, production, archived).

        Promoting to production archives the previous production version in the same
        transaction; a version that does not exist raises ``NotFound`` and changes nothing.
        """
        client = self.client
        return client.op(ops.promote, name, version, stage, client.current_user(), reason)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point an alias such as ``champion`` at a version (moving it if needed)."""
        client = self.client
        return client.op(ops.set_alias, name, alias, version, client.current_user())

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        client = self.client
        client.op(ops.delete_alias, name, alias, client.current_user())

    def model_version(
        self,
        name: str,
        version: int | None = None,
        stage: str | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """One version by number, alias or stage (the production version by default)."""
        return self.client.op(ops.get_model_version, name, version, stage, alias)

    def load_model(
        self,
        name: str,
        version: int | None = None,
        stage: str = "production",
        alias: str | None = None,
        *,
        allow_pickle: bool = False,
        trusted: Sequence[str] = (),
    ) -> Any:
        """Load a version's model: by ``version``, else by ``alias``, else the latest in ``stage``.

        See the module docs for what loads without ``allow_pickle`` and what ``trusted`` does.
        """
        client = self.client
        by_stage = stage if version is None and alias is None else None
        found, data = client.op(
            ops.read_model, client.runtime.artifacts, name, version, by_stage, alias
        )
        return decode_model(found, data, allow_pickle=allow_pickle, trusted=trusted)

    def models(self) -> list[Model]:
        """Every registered model, most recently updated first."""
        return self.client.op(ops.list_models)

    def model(self, name: str) -> ModelDetail:
        """A model with its versions, aliases, tags, note and stage/alias history."""
        return self.client.op(ops.get_model, name)

    def model_versions(self, name: str, stage: str | None = None) -> list[ModelVersion]:
        """A model's versions, newest first: stage, source run, its metrics, who, when."""
        return self.client.op(ops.model_versions, name, stage)

    def set_model_note(self, name: str, markdown: str) -> ModelDetail:
        """Replace a model's markdown note."""
        return self.client.op(ops.set_model_note, name, markdown)

    def diff_versions(self, name: str, v1: int, v2: int) -> VersionDiff:
        """Params changed, metric deltas, artifact change and dataset changes between versions."""
        return self.client.op(ops.diff_versions, name, v1, v2)

    def set_model_tag(self, name: str, key: str, value: str) -> dict[str, str]:
        """Set a tag on a model; returns its tags."""
        return self.client.op(ops.set_model_tags, name, {key: value})

    def set_model_version_tag(
        self, name: str, version: int, key: str, value: str
    ) -> dict[str, str]:
        """Set a tag on a model version; returns its tags."""
        return self.client.op(ops.set_model_version_tags, name, version, {key: value})


_default = Registry()

register_model = _default.register_model
promote = _default.promote
set_alias = _default.set_alias
delete_alias = _default.delete_alias
model_version = _default.model_version
load_model = _default.load_model
models = _default.models
model = _default.model
model_versions = _default.model_versions
set_model_note = _default.set_model_note
diff_versions = _default.diff_versions
set_model_tag = _default.set_model_tag
set_model_version_tag = _default.set_model_version_tag

__all__ = [
    "Registry",
    "decode_model",
    "delete_alias",
    "diff_versions",
    "load_model",
    "model",
    "model_version",
    "model_versions",
    "models",
    "promote",
    "register_model",
    "set_alias",
    "set_model_note",
    "set_model_tag",
    "set_model_version_tag",
]
