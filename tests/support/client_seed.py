"""A store filled through the Python client: experiments, runs with children, models, a failure.

What the migration tests copy from SQLite to PostgreSQL and compare answer for answer.
"""

from __future__ import annotations

import pytest

from chachaml.client.client import Client
from chachaml.client.registry import Registry


def seed(client: Client) -> None:
    client.create_experiment("vision", description="image models", owner="alice")
    registry = Registry(client)
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        with client.run(experiment="vision", name=f"cnn-{i}", tags={"arch": "cnn"}) as run:
            client.log_params({"lr": lr, "layers": 3 + i})
            for step in range(50):
                client.log_metric("loss", 1 / (step + 1) + lr)
                client.log_metric("acc", 0.5 + step / 100 - lr)
            client.log_dataset("train", name="mnist", n_rows=60000, n_cols=784)
            client.log_artifact("model", {"weights": [i, lr]})
            with client.run(name=f"eval-{i}"):
                client.log_metric("val_acc", 0.9 - lr)
            registry.register_model("cnn", artifact="model", run_id=run.id)
        client.set_note(run.id, f"run {i} **notes**")
    with pytest.raises(ValueError), client.run(experiment="text"):
        raise ValueError("diverged")
    registry.promote("cnn", 1, "production")
    registry.promote("cnn", 2, "production")
    registry.set_alias("cnn", "champion", 2)
    registry.set_model_note("cnn", "the CNN family")
