"""What ``chachaml import mlflow`` read, what chachaml holds of it, and the count check."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from chachaml.records.runs import Run
from chachaml.tools import logged_models as model_ops

MARKER = "chachaml.imported_from"  # set last on a run: the run is complete


@dataclass
class Counts:
    """How many of each thing: read from MLflow, or held by chachaml."""

    experiments: int = 0
    runs: int = 0
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    datasets: int = 0
    artifacts: int = 0
    logged_models: int = 0
    models: int = 0
    versions: int = 0
    aliases: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        """The counts by name, in declaration order."""
        return dataclasses.asdict(self)


@dataclass
class ImportReport:
    """What an import read, what chachaml held before and after, and what it left out."""

    source: str
    read: Counts = field(default_factory=Counts)  # in MLflow: everything selected
    before: Counts = field(default_factory=Counts)  # of that, in chachaml before the import
    stored: Counts = field(default_factory=Counts)  # of that, in chachaml after the import
    skipped: list[str] = field(default_factory=list)  # left out, and why
    notes: list[str] = field(default_factory=list)  # imported, but not exactly as in MLflow

    @property
    def added(self) -> dict[str, int]:
        """What this import wrote, by kind."""
        before = self.before.as_dict()
        return {k: n - before[k] for k, n in self.stored.as_dict().items()}

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        """Kinds whose count in chachaml differs from MLflow's: ``(read, stored)``."""
        stored = self.stored.as_dict()
        return {k: (n, stored[k]) for k, n in self.read.as_dict().items() if stored[k] != n}


def held_counts(run: Run | None) -> Counts:
    """What chachaml holds of an imported run (its ``runs`` is 1 once it is complete).

    Logged models count by their index tags; their records are not artifacts of MLflow's.
    """
    if run is None:
        return Counts()
    indexed = sum(k.startswith(model_ops.TAG) for k in run.tags)
    return Counts(
        runs=int(MARKER in run.tags),
        params=len(run.params),
        tags=len(run.tags) - int(MARKER in run.tags) - indexed,
        metric_points=sum(s.count for s in run.metric_summaries.values()),
        datasets=len(run.datasets),
        artifacts=sum(not a.name.startswith(model_ops.RECORDS + "/") for a in run.artifacts),
        logged_models=indexed,
    )
