"""Records for the notebook display tests, from a real SQLite store: every kind of record, and
hostile text (``EVIL``) in every field a user names, so its escaping shows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import PipelineFailed, pipelines, run_pipeline
from chachaml.client.registry import Registry
from tests.conftest import make_settings

EVIL = "<script>window.pwned = 1</script>"
LOSS = [1.0, 0.5, float("nan"), 0.25, 0.2, 0.1]  # a NaN point is stored and must be skipped


@dataclass
class Seeded:
    client: Client
    registry: Registry
    good: str  # a completed run with params, metrics, tags, note, dataset, artifact
    other: str  # a second completed run with different params
    failed: str  # a run that raised
    pipeline_id: str


@contextmanager
def seeded_display(path: Path) -> Iterator[Seeded]:
    """Fill a SQLite store under ``path`` through the client, the registry and a pipeline."""
    client = Client(
        store=f"sqlite:///{path / 'display.db'}",
        artifacts=str(path / "artifacts"),
        settings=make_settings(),
    )
    registry = Registry(client)
    with client.start_run("mnist", name=EVIL) as good:
        client.log_params({"lr": 0.1, "optimizer": EVIL, "depth": 3})
        for step, value in enumerate(LOSS):
            client.log_metric("loss", value, step=step)
        client.log_metric("accuracy", 0.9075)
        client.set_tag("html", EVIL)
        client.log_dataset("train", name=EVIL, n_rows=60000, n_cols=784)
        client.log_artifact("model", {"w": [1, 2, 3]})
        registry.register_model("digits", description=EVIL, tags={"team": EVIL})
    client.set_note(good.id, f"# Notes\n{EVIL}")
    with client.start_run("mnist", name="wider") as other:
        client.log_params({"lr": 0.01, "optimizer": EVIL, "depth": 5})
        client.log_metrics({"loss": 0.08, "accuracy": 0.93})
        client.log_artifact("model", {"w": [4, 5, 6]})
        registry.register_model("digits", stage="production")
    registry.set_alias("digits", "champion", 2)
    registry.set_model_note("digits", EVIL)
    with pytest.raises(RuntimeError), client.start_run("mnist", name="crash") as failed:
        raise RuntimeError(EVIL)

    def load(ctx: object) -> list[int]:
        return [1, 2]

    def train(ctx: object) -> None:
        raise ValueError(EVIL)

    with pytest.raises(PipelineFailed):
        run_pipeline("etl", [load, train], EVIL, client=client)
    client.flush()
    try:
        yield Seeded(client, registry, good.id, other.id, failed.id, pipelines(client=client)[0].id)
    finally:
        client.close()
