"""Subscription operations: send the event stream's matching events to a webhook.

A subscription is the second kind of subscriber of the alert webhooks' queue
(:mod:`chachaml.tools.deliveries`): the worker queues each new outbox event whose type
matches one of its patterns and POSTs it as its CloudEvent, signed with the subscription's
secret, retried and logged as an alert's webhook is, in event order, at least once (the
``X-Chachaml-Event-Id`` header and the body's ``id`` name the event, to de-duplicate by).
A subscription gets the events committed after it was made; unsubscribing drops what of it
is still queued. Managing subscriptions is an admin's business (the access layer says so
for HTTP and MCP).
"""

from __future__ import annotations

from collections.abc import Sequence

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.events import check_type_pattern
from chachaml.records.subscriptions import NewSubscription, Subscription
from chachaml.store.protocol import Store
from chachaml.tools.alerts import check_webhook_url
from chachaml.tools.webhooks import ALLOW_PRIVATE_ENV, refused_target

MAX_PATTERNS = 50
EVERY_TYPE = ("*",)


def check_types(types: object) -> tuple[str, ...]:
    """Type patterns (``run.*``, ``model.stage_changed``): each must match a known type."""
    if types is None:
        return EVERY_TYPE
    if isinstance(types, str):
        types = [t.strip() for t in types.split(",") if t.strip()]
    if not isinstance(types, Sequence) or isinstance(types, bytes):
        raise InvalidInput(f"types must be a list of event type patterns, got {types!r}")
    if not types:
        raise InvalidInput("types must name at least one event type pattern (or '*')")
    if len(types) > MAX_PATTERNS:
        raise InvalidInput(f"types may hold at most {MAX_PATTERNS} patterns, got {len(types)}")
    checked: list[str] = []
    for pattern in types:
        if not isinstance(pattern, str):
            raise InvalidInput(f"an event type pattern must be a string, got {pattern!r}")
        why = check_type_pattern(pattern)
        if why is not None:
            raise InvalidInput(why)
        checked.append(pattern)
    return tuple(dict.fromkeys(checked))


def check_subscription_id(value: object) -> int:
    """A subscription id: a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"a subscription id is a positive integer, got {value!r}")
    return value


def build_subscription(url: object, types: object, secret: object, user: str) -> NewSubscription:
    """Validate :func:`subscribe`'s arguments into a subscription for the store."""
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise InvalidInput("secret must be a non-empty string")
    v.optional_text(secret, "secret", v.MAX_FILTER)
    return NewSubscription(
        url=check_webhook_url(url),
        types=check_types(types),
        secret=secret if isinstance(secret, str) else None,
        created_by=v.name(user, "user"),
    )


async def subscribe(
    store: Store, new: NewSubscription, *, allow_private: bool = False
) -> Subscription:
    """Create a subscription; its URL is refused on a non-public address unless allowed.

    The same check as an alert's webhook (loopback, private, link-local... as written or as
    the name resolves now; ``CHACHAML_WEBHOOK_ALLOW_PRIVATE=true`` allows them); delivery
    checks again before each POST.
    """
    if not allow_private:
        why = await refused_target(new.url)
        if why is not None:
            raise InvalidInput(
                f"url refused, {why}; webhooks go to public addresses unless"
                f" {ALLOW_PRIVATE_ENV}=true"
            )
    return await store.subscribe(new)


async def unsubscribe(store: Store, subscription_id: int) -> None:
    """Delete a subscription; what of it is queued is not sent. ``NotFound`` if absent."""
    await store.unsubscribe(check_subscription_id(subscription_id))


async def list_subscriptions(store: Store) -> list[Subscription]:
    """Every subscription (targets by host only), with its deliveries counted."""
    return await store.list_subscriptions()
