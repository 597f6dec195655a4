"""Refresh the README's web UI screenshots: ``python scripts/screenshot_ui.py [--out docs]``.

Starts ``chachaml serve`` on a temporary store and a free loopback port, logs a small,
realistic sweep of runs into it through the documented HTTP write API (which, unlike the
Python client, lets a run say when it started and ended, so the page shows real times and
durations), opens the Runs page and the best run's page in Debian's Chromium through
Playwright, and writes ``ui-runs.png`` and ``ui-run.png``.
Nothing outside the temporary folder and ``--out`` is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 720}
START_SECONDS = 30.0
# (experiment, user, name, params, final accuracy, epochs, minutes per epoch); runs start an
# hour or so apart from START, and their curves rise towards the final accuracy
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
SWEEP = [
    ("mnist", "ana", "cnn-baseline", {"model": "cnn", "lr": 0.01, "batch": 64}, 0.962, 12, 1.5),
    ("mnist", "ana", "cnn-wider", {"model": "cnn", "lr": 0.01, "batch": 128}, 0.978, 12, 2.2),
    ("mnist", "ben", "mlp", {"model": "mlp", "lr": 0.05, "batch": 256}, 0.941, 10, 0.4),
    ("iris", "chen", "logreg", {"model": "logreg", "C": 1.0}, 0.947, 20, 0.01),
    ("mnist", "ben", "cnn-dropout", {"model": "cnn", "lr": 0.005, "batch": 128}, 0.981, 15, 2.3),
    ("iris", "chen", "random-forest", {"model": "rf", "n_estimators": 200}, 0.967, 1, 0.3),
    ("mnist", "ana", "cnn-lr-0.1", {"model": "cnn", "lr": 0.1, "batch": 128}, 0.912, 8, 2.1),
]
EXPERIMENTS = {"mnist": "Handwritten digits, 28x28", "iris": "Fisher's iris, 3 classes"}


def post(base: str, path: str, body: object) -> dict[str, Any]:
    """One call of the documented write API (local mode: no token; JSON in, JSON out)."""
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        out: dict[str, Any] = json.load(answer)
        return out


def upload(base: str, run_id: str, name: str, data: bytes, content_type: str) -> None:
    """Upload one artifact (multipart ``file``), as ``curl -F file=@...`` does."""
    boundary = "chachaml-screenshot-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(f"{base}/api/w/runs/{run_id}/artifacts", body, headers)
    with urllib.request.urlopen(request, timeout=30):
        pass


def seed(base: str) -> str:
    """Log the sweep and one failed run through the HTTP write API; returns the best run's id."""
    rng = random.Random(17)
    for name, description in EXPERIMENTS.items():
        post(base, "/api/w/experiments", {"name": name, "description": description})
    best = ("", 0.0)
    started = START
    for experiment, user, name, params, target, epochs, minutes in SWEEP:
        started += rng.uniform(1800, 7200)
        run = post(base, "/api/w/runs", {
            "experiment": experiment, "name": name, "created_by": user, "started_at": started,
            "params": {**params, "epochs": epochs}, "tags": {"model": str(params["model"])},
        })["id"]  # fmt: skip
        points = []
        for epoch in range(epochs):
            progress = 1 - math.exp(-4 * (epoch + 1) / epochs)
            accuracy = target - (target - 0.5) * (1 - progress) + rng.gauss(0, 0.003)
            loss = 2.3 * (1 - progress) + (1 - target) + abs(rng.gauss(0, 0.01))
            when = started + 60 * minutes * (epoch + 1)
            points += [
                {
                    "key": "accuracy",
                    "value": min(accuracy, 0.999),
                    "step": epoch,
                    "timestamp": when,
                },
                {"key": "loss", "value": loss, "step": epoch, "timestamp": when},
            ]
        post(base, f"/api/w/runs/{run}/metrics", {"metrics": points})
        rows, cols = (60_000, 784) if experiment == "mnist" else (120, 4)
        train = {"role": "train", "name": f"{experiment}-train", "n_rows": rows, "n_cols": cols}
        post(base, f"/api/w/runs/{run}/datasets", train)
        weights = json.dumps(
            {"model": params["model"], "weights": [rng.gauss(0, 1) for _ in range(64)]}
        )
        upload(base, run, "model.json", weights.encode(), "application/json")
        report = "\n".join(f"epoch {p['step']}: {p['key']}={p['value']:.4f}" for p in points)
        upload(base, run, "train.log", report.encode(), "text/plain")
        post(base, f"/api/w/runs/{run}/end", {"ended_at": started + 60 * minutes * epochs + 20})
        if target > best[1]:
            best = (run, target)
    post(base, "/api/w/models", {"name": "mnist-cnn", "run_id": best[0], "artifact": "model.json"})
    post(base, "/api/w/models/mnist-cnn/versions/1/promote", {"stage": "production"})
    started += 3600
    failed = post(base, "/api/w/runs", {
        "experiment": "mnist", "name": "cnn-fp16", "created_by": "ben", "started_at": started,
        "params": {"model": "cnn", "lr": 0.01, "precision": "fp16"},
    })["id"]  # fmt: skip
    post(base, f"/api/w/runs/{failed}/metrics", {"loss": None})
    post(base, f"/api/w/runs/{failed}/end", {
        "status": "failed", "error": "FloatingPointError: loss became NaN at step 0",
        "ended_at": started + 42,
    })  # fmt: skip
    return best[0]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    """Return once ``/healthz`` answers; fail with the server's stderr if it exits first."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            err = server.stderr.read().decode() if server.stderr else ""
            raise SystemExit(f"chachaml serve exited with {server.returncode}:\n{err}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"chachaml serve did not answer at {base} within {START_SECONDS:g} s")


def shoot(base: str, run_id: str, out: Path) -> list[Path]:
    """Open the Runs page and a run's page in Chromium; write a PNG of each."""
    from playwright.sync_api import sync_playwright

    # the Runs page as a screen shows it; a run's page whole, down to its charts and note
    shots = [("ui-runs.png", "/runs", False), ("ui-run.png", f"/runs/{run_id}", True)]
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            for name, path, whole in shots:
                page.goto(base + path, wait_until="networkidle")
                charts = page.locator(".chart")
                for i in range(charts.count()):  # charts draw once scrolled into view
                    charts.nth(i).scroll_into_view_if_needed()
                    charts.nth(i).locator("canvas, svg").first.wait_for(timeout=10_000)
                page.evaluate("window.scrollTo(0, 0)")
                target = out / name
                page.screenshot(path=str(target), full_page=whole)
                written.append(target)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Seed, serve, shoot; prints the PNGs written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chachaml-shots-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "chachaml.cli", "serve", "--store", f"sqlite:///{tmp}/ui.db",
             "--artifacts", f"{tmp}/artifacts", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "CHACHA_USER": "ana"},
        )  # fmt: skip
        try:
            wait_until_up(base, server)
            best = seed(base)
            for path in shoot(base, best, args.out):
                print(f"{path} ({path.stat().st_size // 1024} KB)")
        finally:
            server.terminate()
            server.wait(timeout=10)
            if server.stderr:
                server.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
