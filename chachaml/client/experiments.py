"""Editing experiments from Python: rename, archive and restore, tags.

``chachaml.rename_experiment(...)`` and friends act through the default client;
``ExperimentEdits(client)`` binds the same API to another :class:`~chachaml.Client`. Each
edit is attributed to the client's user (in team mode, to the token's) and writes its
``experiment.*`` event, as the same edit through MLflow's API or MCP does.
"""

from __future__ import annotations

from chachaml.client.default import ClientBound
from chachaml.tools import experiments as ops


class ExperimentEdits(ClientBound):
    """Experiment edits, bound to a client (the default client when none is given)."""

    def rename_experiment(self, name: str, new_name: str) -> None:
        """Rename an experiment; its runs and alert rules follow it.

        ``Conflict`` if an experiment (archived or not) holds ``new_name`` already; the
        ``default`` experiment keeps its name.
        """
        client = self.client
        client.op(ops.rename_experiment, name, new_name, client.settings.user)

    def archive_experiment(self, name: str) -> None:
        """Archive an experiment with its runs: out of listings, restorable, name kept."""
        client = self.client
        client.op(ops.archive_experiment, name, client.settings.user)

    def restore_experiment(self, name: str) -> None:
        """Bring an archived experiment and its runs back into listings."""
        client = self.client
        client.op(ops.restore_experiment, name, client.settings.user)

    def set_experiment_tag(self, name: str, key: str, value: object) -> None:
        """Set (or overwrite) one tag of an experiment; the value is stored as text."""
        client = self.client
        client.op(ops.set_experiment_tag, name, key, str(value), client.settings.user)

    def delete_experiment_tag(self, name: str, key: str) -> None:
        """Remove one tag of an experiment; ``NotFound`` if it has no such tag."""
        client = self.client
        client.op(ops.delete_experiment_tag, name, key, client.settings.user)


_default = ExperimentEdits()

rename_experiment = _default.rename_experiment
archive_experiment = _default.archive_experiment
restore_experiment = _default.restore_experiment
set_experiment_tag = _default.set_experiment_tag
delete_experiment_tag = _default.delete_experiment_tag

__all__ = [
    "ExperimentEdits",
    "archive_experiment",
    "delete_experiment_tag",
    "rename_experiment",
    "restore_experiment",
    "set_experiment_tag",
]
