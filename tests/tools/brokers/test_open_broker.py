"""Broker URLs: each scheme opens its broker, named without credentials; bad ones are refused."""

from __future__ import annotations

import pytest

from chachaml.errors import InvalidInput
from chachaml.tools.brokers import open_broker, open_brokers
from chachaml.tools.brokers.nats_jetstream import NatsJetStream
from chachaml.tools.brokers.rabbitmq import RabbitMQ
from chachaml.tools.brokers.redis_streams import RedisStreams


def test_each_scheme_opens_its_broker_named_without_credentials() -> None:
    nats = open_broker("nats://user:secret@127.0.0.1:4222")
    assert isinstance(nats, NatsJetStream) and nats.name == "nats://127.0.0.1:4222"
    amqp = open_broker("amqp://guest:guest@rabbit:5672/prod?heartbeat=30")
    assert isinstance(amqp, RabbitMQ) and amqp.name == "amqp://rabbit:5672/prod"


@pytest.mark.parametrize(
    ("url", "name", "stream"),
    [
        ("redis://:pw@cache:6379/2/ml-events", "redis://cache:6379/2/ml-events", "ml-events"),
        ("redis://cache:6379/0", "redis://cache:6379/0/chachaml", "chachaml"),
        ("redis://cache", "redis://cache/0/chachaml", "chachaml"),
    ],
)
def test_a_redis_url_names_its_database_and_stream(url: str, name: str, stream: str) -> None:
    redis = open_broker(url)
    assert isinstance(redis, RedisStreams)
    assert (redis.name, redis.stream) == (name, stream)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("kafka://k:9092", "kafka scheme"),
        ("127.0.0.1:4222", "a broker URL starts with nats://"),
        ("nats://", "names no host"),
        ("nats://h:port", "is not a URL"),
        ("nats://h:4222/stream", "a NATS URL has no path"),
        ("redis://h:6379/events", "db a number"),
        ("redis://h:6379/0/a/b", "db a number"),
        ("amqp://h:5672/a/b", "virtual host"),
    ],
)
def test_a_bad_url_is_refused_with_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as refused:
        open_broker(url)
    assert "secret" not in str(refused.value)


def test_a_broker_named_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="more than once"):
        open_brokers(["nats://a:4222", "nats://u:p@a:4222"])
