"""``chachaml events publish``: the backlog to a broker once; bad or missing URLs refused.
``chachaml compress-metrics``: chunks stored before compression rewritten, once."""

from __future__ import annotations

import sqlite3
import uuid
from array import array
from pathlib import Path

import pytest
from redis import Redis

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.store.codec import pack_arrays
from tests.support.brokers import REDIS_URL, require


def test_events_publish_once_sends_the_backlog_to_a_redis_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require(REDIS_URL)
    store = ["--store", f"sqlite:///{tmp_path / 'cli.db'}", "--artifacts", str(tmp_path / "a")]
    assert main([*store, "demo", "--runs", "1"]) == 0
    stream = f"t{uuid.uuid4().hex[:12]}"
    url = f"{REDIS_URL}/{stream}"
    capsys.readouterr()
    assert main(["events", "publish", *store, "--to", url, "--once"]) == 0
    sent = capsys.readouterr().out
    redis = Redis.from_url(REDIS_URL)
    try:
        count = redis.xlen(stream)
        assert count > 0 and sent.strip() == f"{url}: {count} events published"
        assert main(["events", "publish", *store, "--to", url, "--once"]) == 0
        assert capsys.readouterr().out.strip() == f"{url}: 0 events published"
    finally:
        redis.delete(stream)
        redis.close()


@pytest.mark.parametrize(
    ("to", "says"),
    [
        (["--to", "kafka://k:9092"], "kafka scheme"),
        ([], "no broker to publish to: pass --to URL or set CHACHAML_EVENTS"),
    ],
)
def test_events_publish_refuses_bad_or_missing_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], to: list[str], says: str
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'cli.db'}"]
    assert main(["events", "publish", *store, *to, "--once"]) == 2
    assert says in capsys.readouterr().err


def test_compress_metrics_rewrites_chunks_stored_raw_and_then_finds_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.db"
    store = ["--store", f"sqlite:///{db}", "--artifacts", str(tmp_path / "a")]
    client = Client(store=f"sqlite:///{db}", artifacts=str(tmp_path / "a"))
    try:
        with client.run(experiment="e") as run:
            for step in range(5_000):
                client.log_metric("loss", 1 / (step + 1), step=step)
        expected = client.metric_history(run.id, "loss")
    finally:
        client.close()
    columns = expected.to_numpy()
    steps: array[int] = array("q", columns["step"].tobytes())
    values: array[float] = array("d", columns["value"].tobytes())
    times: array[float] = array("d", columns["timestamp"].tobytes())
    with sqlite3.connect(db) as conn:  # as chachaml stored it before compression
        conn.execute("DELETE FROM metric_chunks")
        conn.execute(
            "INSERT INTO metric_chunks (run_id, key, count, format, steps, vals, times,"
            " min_step, max_step, in_order) VALUES (?, 'loss', 5000, 0, ?, ?, ?, 0, 4999, 1)",
            (run.id, *pack_arrays(steps, values, times)),
        )
    conn.close()
    capsys.readouterr()
    assert main(["compress-metrics", *store]) == 0
    assert capsys.readouterr().out.strip() == "compressed 1 metric chunks (0.1 MB -> 0.0 MB)"
    assert main(["compress-metrics", *store]) == 0
    assert capsys.readouterr().out.strip() == "no raw metric chunk left to compress"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT format FROM metric_chunks").fetchall() == [(1,)]
    conn.close()
    client = Client(store=f"sqlite:///{db}", artifacts=str(tmp_path / "a"))
    try:
        assert client.metric_history(run.id, "loss") == expected
    finally:
        client.close()
