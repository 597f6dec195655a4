"""``chachaml events publish``: the backlog to a broker once; bad or missing URLs refused."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from redis import Redis

from chachaml.cli import main
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
