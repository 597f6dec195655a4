"""The brokers benchmark at a tiny size, so that it cannot rot: the real NATS JetStream."""

from __future__ import annotations

from pathlib import Path

from bench import brokers
from bench.runner import Context
from bench.seed import Catalogue
from tests.support.brokers import NATS_URL, require


def test_bench_brokers_times_the_publish_rate_to_nats(tmp_path: Path) -> None:
    require(NATS_URL)
    (figure,) = brokers.measure(brokers.Size(events=300), Context(tmp_path, Catalogue(tmp_path)))
    assert figure.unit == "events/s" and figure.value > 0 and figure.target is not None
