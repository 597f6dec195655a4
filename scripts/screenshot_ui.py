"""Screenshots of the web UI: ``python scripts/screenshot_ui.py [--out docs] [--pages DIR]``.

Starts ``chachaml serve`` on a temporary store and a free loopback port, logs a small,
realistic sweep of runs into it through the documented HTTP write API (which, unlike the
Python client, lets a run say when it started and ended, so the page shows real times and
durations), and photographs it in Debian's Chromium (its headless shell when installed)
through Playwright:

- ``--out`` (default ``docs``) gets the README's pictures, ``ui-runs.png`` (the Runs page) and
  ``ui-run.png`` (the best run's page), taken before anything time-dependent is added;
- ``--pages`` (default ``test-output/ui-pages``) then gets every page, after a running run, a
  second model version, an alias, a pipeline and a fired alert are added, at desktop
  (1280x900) and phone (390x844) size: ``<page>-desktop.png`` and ``<page>-phone.png``.

Times are shown in UTC (the browser's zone is set) so the pictures do not depend on the host.
Nothing outside the temporary folder, ``--out`` and ``--pages`` is touched.
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
# Debian's headless shell (the Chromium release Playwright launches for headless runs, at half
# the full browser's CPU) when it is installed, else Debian's full Chromium
SHELL = Path("/usr/bin/chromium-headless-shell")
CHROMIUM = str(SHELL if SHELL.exists() else Path("/usr/bin/chromium"))
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
VIEWPORT = {"width": 1280, "height": 720}  # the README's pictures
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
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


def seed(base: str) -> dict[str, Any]:
    """Log the sweep and one failed run through the HTTP write API.

    Returns the ids: ``best`` (the best run), ``runs`` (the sweep's, in order), ``failed``.
    """
    rng = random.Random(17)
    for name, description in EXPERIMENTS.items():
        post(base, "/api/w/experiments", {"name": name, "description": description})
    best = ("", 0.0)
    ids: list[str] = []
    started = START
    for experiment, user, name, params, target, epochs, minutes in SWEEP:
        started += rng.uniform(1800, 7200)
        run = post(base, "/api/w/runs", {
            "experiment": experiment, "name": name, "created_by": user, "started_at": started,
            "params": {**params, "epochs": epochs}, "tags": {"model": str(params["model"])},
        })["id"]  # fmt: skip
        ids.append(run)
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
    return {"best": best[0], "runs": ids, "failed": failed}


def seed_live(base: str, seeded: dict[str, Any]) -> str:
    """Add what the README pictures leave out; returns the pipeline's id.

    A running run, a second model version with an alias, a pipeline with a failed step and
    an alert rule that fired.
    """
    now = time.time()
    live = post(base, "/api/w/runs", {
        "experiment": "mnist", "name": "cnn-large", "created_by": "ana", "started_at": now - 900,
        "params": {"model": "cnn", "lr": 0.01, "batch": 512}, "heartbeat_timeout": 86_400,
    })["id"]  # fmt: skip
    points = [
        {"key": "accuracy", "value": 0.5 + 0.04 * i, "step": i, "timestamp": now - 900 + 60 * i}
        for i in range(10)
    ]
    post(base, f"/api/w/runs/{live}/metrics", {"metrics": points})
    second = seeded["runs"][1]
    post(base, "/api/w/models", {"name": "mnist-cnn", "run_id": second, "artifact": "model.json"})
    post(base, "/api/w/models/mnist-cnn/versions/2/promote", {"stage": "staging"})
    post(base, "/api/w/models/mnist-cnn/aliases", {"alias": "champion", "version": 1})
    pipeline = "nightly-2026-03-03"
    post(base, "/api/w/pipelines", {
        "id": pipeline, "name": "nightly", "run_id": seeded["failed"], "started_at": START,
        "steps": [{"name": "prepare"}, {"name": "train", "depends_on": ["prepare"]},
                  {"name": "evaluate", "depends_on": ["train"]}],
    })  # fmt: skip
    steps = f"/api/w/pipelines/{pipeline}/steps"
    for step, run, status in (("prepare", seeded["runs"][0], "completed"),
                              ("train", seeded["failed"], "failed")):  # fmt: skip
        post(base, f"{steps}/start", {"step": step, "run_id": run, "attempt": 1,
                                      "started_at": START + 60})  # fmt: skip
        error = "FloatingPointError: loss became NaN at step 0" if status == "failed" else None
        post(base, f"{steps}/end", {"step": step, "status": status, "ended_at": START + 600,
                                    "error": error})  # fmt: skip
    post(base, f"{steps}/end", {"step": "evaluate", "status": "skipped", "ended_at": START + 600,
                                "error": "train failed"})  # fmt: skip
    post(base, f"/api/w/pipelines/{pipeline}/end", {
        "status": "failed", "error": "step train failed", "ended_at": START + 600,
    })  # fmt: skip
    post(base, "/api/w/alerts", {
        "name": "accuracy-low", "kind": "threshold", "metric_key": "accuracy", "op": "<",
        "threshold": 0.95, "experiment": "mnist",
    })  # fmt: skip
    post(base, "/api/w/alerts/check", {"now": now, "lookback_hours": 24 * 366 * 10})
    return pipeline


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


def _open(browser: Any, size: dict[str, int], phone: bool = False) -> Any:
    """A page in a fresh context: light scheme, UTC, the given screen, no live reloads."""
    context = browser.new_context(
        viewport=size, is_mobile=phone, has_touch=phone, color_scheme="light", timezone_id="UTC"
    )
    # a live page updates itself every few seconds; not while being pictured
    context.add_init_script(
        "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});"
    )
    page = context.new_page()
    page.in_flight = set()  # the page's requests not yet answered (event streams aside)
    page.quiet_since = time.monotonic()

    def started(request: Any) -> None:
        if request.resource_type != "eventsource":
            page.in_flight.add(request)

    def ended(request: Any) -> None:
        if request in page.in_flight:
            page.in_flight.discard(request)
            page.quiet_since = time.monotonic()

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    return page


def _settle(page: Any, quiet: float = 0.1, timeout: float = 30.0) -> None:
    """Wait until no request has been in flight for ``quiet`` s.

    Playwright's networkidle waits 500 ms after every page, longer than these pages take.
    """
    deadline = time.monotonic() + timeout
    while page.in_flight or time.monotonic() - page.quiet_since < quiet:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{page.url}: requests still in flight after {timeout} s")
        page.wait_for_timeout(20)  # Playwright delivers request events while it waits


def _snap(page: Any, url: str, target: Path, whole: bool) -> Path:
    """Open ``url``, wait until every chart has drawn, write a PNG."""
    page.goto(url, wait_until="load")
    _settle(page)
    charts = page.locator(".chart")
    for i in range(charts.count()):  # charts draw once scrolled into view
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).locator("canvas, svg").first.wait_for(timeout=10_000)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(target), full_page=whole)
    return target


def shoot_readme(browser: Any, base: str, run_id: str, out: Path) -> list[Path]:
    """The README's pictures: the Runs page as a screen shows it, a run's page whole."""
    page = _open(browser, VIEWPORT)
    try:
        return [
            _snap(page, base + "/runs", out / "ui-runs.png", whole=False),
            _snap(page, f"{base}/runs/{run_id}", out / "ui-run.png", whole=True),
        ]
    finally:
        page.context.close()


def every_page(seeded: dict[str, Any], pipeline: str) -> list[tuple[str, str]]:
    """One URL of each page the UI has, as (name, path)."""
    best, runs, failed = seeded["best"], seeded["runs"], seeded["failed"]
    return [
        ("overview", "/"),
        ("runs", "/runs"),
        ("run", f"/runs/{best}"),
        ("run-failed", f"/runs/{failed}"),
        ("artifacts", f"/runs/{best}/artifacts"),
        ("experiments", "/experiments?metric=accuracy"),
        ("experiment", "/experiments/mnist?metric=accuracy"),
        ("runs-filtered", "/runs?q=metrics.accuracy+%3E+0.95+and+params.model+%3D+%22cnn%22"),
        ("compare", "/compare?ids=" + ",".join(runs[:3])),
        ("models", "/models"),
        ("model", "/models/mnist-cnn"),
        ("diff", "/diff/mnist-cnn/1/2"),
        ("pipelines", "/pipelines"),
        ("pipeline", f"/pipelines/{pipeline}"),
        ("alerts", "/alerts"),
        ("chat", "/chat"),
        ("not-found", "/no/such/page"),
    ]


def shoot_pages(browser: Any, base: str, pages: list[tuple[str, str]], out: Path) -> list[Path]:
    """Every page, whole, at desktop and at phone size."""
    written = []
    for screen, size, phone in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
        page = _open(browser, size, phone)
        try:
            for name, path in pages:
                written.append(_snap(page, base + path, out / f"{name}-{screen}.png", whole=True))
        finally:
            page.context.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Seed, serve, shoot; prints the PNGs written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs")
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary to drive")
    parser.add_argument(
        "--pages",
        type=Path,
        default=ROOT / "test-output" / "ui-pages",
        help="folder for every page at desktop and phone size",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.pages.mkdir(parents=True, exist_ok=True)
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
            seeded = seed(base)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                try:
                    written = shoot_readme(browser, base, seeded["best"], args.out)
                    pages = every_page(seeded, seed_live(base, seeded))
                    written += shoot_pages(browser, base, pages, args.pages)
                finally:
                    browser.close()
            for path in written:
                print(f"{path} ({path.stat().st_size // 1024} KB)")
        finally:
            server.terminate()
            server.wait(timeout=10)
            if server.stderr:
                server.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
