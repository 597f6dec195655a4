"""``ml.subscribe`` / ``subscriptions`` / ``unsubscribe`` from Python, on each store and over
a server (the remote store asks it; the server keeps them and sends the deliveries)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import chachaml as ml
from chachaml.client.client import Client
from chachaml.errors import InvalidInput, NotFound
from tests.conftest import REMOTE_TOKEN, make_settings, remote_transport

PUBLIC = "https://93.184.216.34/hooks/T0/secret-path"  # an IP literal: no DNS asked


@pytest.fixture
def client(
    tracking_store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Client]:
    transport = remote_transport(request, tracking_store_url)
    settings = make_settings(token=REMOTE_TOKEN if transport is not None else None)
    c = Client(store=tracking_store_url, artifacts=str(tmp_path / "a"), settings=settings,
               transport=transport)  # fmt: skip
    try:
        yield c
    finally:
        c.close()


def test_subscribe_list_and_unsubscribe_on_every_store(client: Client) -> None:
    api = ml.Subscriptions(client)
    sub = api.subscribe(PUBLIC, ["run.ended", "model.*"], secret="s3")
    assert (sub.types, sub.signed, sub.target) == (
        ["run.ended", "model.*"], True, "https://93.184.216.34/…",
    )  # fmt: skip
    assert sub.created_by == client.current_user() or sub.created_by == "tester"
    assert [s.id for s in api.subscriptions()] == [sub.id]
    api.unsubscribe(sub.id)
    assert api.subscriptions() == []
    with pytest.raises(NotFound, match=f"subscription {sub.id}"):
        api.unsubscribe(sub.id)


def test_bad_arguments_raise_invalid_input_before_anything_is_stored(client: Client) -> None:
    api = ml.Subscriptions(client)
    with pytest.raises(InvalidInput, match="matches no event type"):
        api.subscribe(PUBLIC, ["runs.*"])
    with pytest.raises(InvalidInput, match="not a public address"):
        api.subscribe("http://192.168.1.1/hook")
    with pytest.raises(InvalidInput, match="positive integer"):
        api.unsubscribe(0)
    assert api.subscriptions() == []


def test_the_module_level_functions_are_the_default_subscriptions_api() -> None:
    assert {"subscribe", "unsubscribe", "subscriptions", "Subscriptions", "Subscription"} <= set(
        ml.__all__
    )
    assert ml.subscribe.__self__.__class__ is ml.Subscriptions  # type: ignore[attr-defined]
