"""A small, dependency-free training job that shows what a tracked run records.

Logistic regression by gradient descent on a synthetic two-class dataset, one run per
learning rate, each logging params, a loss and accuracy curve, its dataset, its weights and
a note. Each run's line prints its values as ``chachaml runs`` shows them (4 significant
digits), so the per-run lines and the table that follows agree.
"""

from __future__ import annotations

import math
import random

from chachaml.client.client import Client


def make_data(n: int, seed: int) -> tuple[list[list[float]], list[int]]:
    """Two Gaussian blobs in 4 dimensions, labelled 0 and 1."""
    rng = random.Random(seed)
    xs: list[list[float]] = []
    ys: list[int] = []
    for i in range(n):
        label = i % 2
        centre = 1.0 if label else -1.0
        xs.append([rng.gauss(centre * (j + 1) / 4, 1.0) for j in range(4)])
        ys.append(label)
    return xs, ys


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-max(min(z, 30.0), -30.0)))


def train(
    client: Client, lr: float, epochs: int, xs: list[list[float]], ys: list[int]
) -> dict[str, float]:
    """Fit weights with batch gradient descent, logging every epoch; returns the last metrics."""
    w = [0.0] * len(xs[0])
    b = 0.0
    last: dict[str, float] = {}
    for epoch in range(epochs):
        grad_w = [0.0] * len(w)
        grad_b = 0.0
        loss = 0.0
        correct = 0
        for x, y in zip(xs, ys, strict=True):
            p = _sigmoid(sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b)
            loss -= math.log(p if y else 1 - p + 1e-12) if p > 0 else 0.0
            correct += int((p >= 0.5) == bool(y))
            for j, xj in enumerate(x):
                grad_w[j] += (p - y) * xj
            grad_b += p - y
        n = len(xs)
        w = [wi - lr * g / n for wi, g in zip(w, grad_w, strict=True)]
        b -= lr * grad_b / n
        last = {"accuracy": correct / n, "loss": loss / n}
        client.log_metrics(last, step=epoch)
    client.log_artifact("weights.json", {"w": w, "b": b})
    return last


def run_demo(client: Client, runs: int = 4, epochs: int = 30) -> None:
    """Track ``runs`` training runs with increasing learning rates in experiment ``demo``."""
    xs, ys = make_data(400, seed=7)
    client.create_experiment("demo", description="Logistic regression on synthetic blobs")
    for i in range(runs):
        lr = 0.01 * 3**i
        with client.run(experiment="demo", name=f"logreg-lr{lr:g}", tags={"model": "logreg"}):
            client.log_params({"lr": lr, "epochs": epochs, "features": 4})
            client.log_dataset("train", name="blobs", n_rows=len(xs), n_cols=len(xs[0]))
            last = train(client, lr, epochs, xs, ys)
            run = client.active_run()
            assert run is not None
            run.set_note(f"Final training accuracy **{last['accuracy']:.4g}** with lr={lr:g}.")
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(last.items()))
        print(f"run {i + 1}/{runs}: {run.id[:12]} {run.name} {shown}")
