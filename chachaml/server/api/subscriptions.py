"""Webhook subscriptions over HTTP: admin-only, like every surface that manages them.

``POST /api/w/subscriptions`` subscribes a URL to event type patterns, ``POST
/api/w/subscriptions/delete`` unsubscribes, ``GET /api/store/v1/subscriptions`` lists them
(targets by host only, secrets never). A subscription makes this server POST to a URL of
the caller's choosing, so each route needs the admin scope in team mode. Each endpoint is
one call of an operation in :mod:`chachaml.tools.subscriptions`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from chachaml.records.subscriptions import Subscription
from chachaml.records.validation import MAX_FILTER, MAX_URL
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.tools import subscriptions as ops
from chachaml.tools.webhooks import Delivery

api = Api()
ERR = (401, 403, 404, 422)
Pattern = Annotated[str, m.NoNul, Field(min_length=1, max_length=100)]


class Subscribe(m.Body):
    """A URL to POST each matching event to, as its CloudEvent.

    ``types`` are event type patterns (``run.*``, ``model.stage_changed``; every type when
    left out); with ``secret`` each delivery is HMAC-signed.
    """

    url: Annotated[str, m.NoNul, Field(min_length=1, max_length=MAX_URL)]
    types: list[Pattern] | None = Field(default=None, max_length=ops.MAX_PATTERNS)
    secret: Annotated[str, m.NoNul, Field(min_length=1, max_length=MAX_FILTER)] | None = None


class SubscriptionId(m.Body):
    """One subscription, by id."""

    id: int = Field(ge=1, le=(1 << 63) - 1)


class SubscriptionList(BaseModel):
    """Every subscription, oldest first."""

    subscriptions: list[Subscription]


def _delivery(call: Call) -> Delivery:
    found: Delivery = call.request.app.state.delivery
    return found


@api.route("GET", "/api/store/v1/subscriptions", scope="admin", response=SubscriptionList,
           errors=(401, 403))  # fmt: skip
async def list_subscriptions(call: Call) -> SubscriptionList:
    """Every webhook subscription, with its deliveries counted and its last try."""
    return SubscriptionList(subscriptions=await ops.list_subscriptions(call.store))


@api.route("POST", "/api/w/subscriptions", scope="admin", body=Subscribe,
           response=Subscription, errors=ERR)  # fmt: skip
async def subscribe(call: Call) -> Subscription:
    """Subscribe a URL to the events whose type matches; attributed to the caller.

    It gets the events committed from now on. A URL on a non-public address is a 422
    unless the server allows private webhooks; an unknown type pattern is a 422.
    """
    b: Subscribe = call.body
    new = ops.build_subscription(b.url, b.types, b.secret, call.user)
    return await ops.subscribe(call.store, new, allow_private=_delivery(call).allow_private)


@api.route("POST", "/api/w/subscriptions/delete", scope="admin", body=SubscriptionId,
           response=m.Ok, errors=ERR)  # fmt: skip
async def unsubscribe(call: Call) -> m.Ok:
    """Delete a subscription; what of it is still queued is not sent."""
    await ops.unsubscribe(call.store, call.body.id)
    return m.Ok()
