"""The opt-in ``subscriptions`` toolset (admin): subscribe a webhook to events, list, remove.

A subscription makes the server POST to a URL of the caller's choosing, so each tool needs
an admin caller (a token with admin scope over HTTP; the local user over stdio); the two
that change something are left out by ``--read-only``.
"""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from chachaml.records.subscriptions import Subscription
from chachaml.server.mcp import render
from chachaml.server.mcp.access import caller_user
from chachaml.server.mcp.runs import ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import subscriptions as ops
from chachaml.tools.webhooks import Delivery


class SubscriptionList(BaseModel):
    """Every webhook subscription, oldest first."""

    subscriptions: list[Subscription]


def subscriptions_text(found: list[Subscription]) -> str:
    """Subscriptions as rows."""
    if not found:
        return "No webhook subscriptions."
    rows = [
        [s.id, s.target, ", ".join(s.types), s.signed, s.pending, s.delivered, s.failed,
         s.last_error or ("ok" if s.last_attempt_at else "")]
        for s in found
    ]  # fmt: skip
    headers = ["id", "target", "types", "signed", "pending", "delivered", "failed", "last"]
    return f"{len(found)} subscriptions:\n{render.table(headers, rows)}"


def subscription_tools(store: Store, user: str, delivery: Delivery) -> list[ToolFn]:
    """The ``subscriptions`` toolset, bound to ``store``; URLs judged as ``delivery`` allows."""

    async def subscribe(
        url: Annotated[str, Field(description="The http(s) URL to POST each event to.")],
        types: Annotated[
            list[str] | None,
            Field(
                description='Event type patterns, e.g. ["run.*", "model.stage_changed"];'
                " omit for every type."
            ),
        ] = None,
        secret: Annotated[
            str | None, Field(description="Signs each delivery (HMAC-SHA256) when given.")
        ] = None,
    ) -> Annotated[CallToolResult, Subscription]:
        """Subscribe a webhook to the event stream: each matching event is POSTed as CloudEvents.

        Deliveries are in event order, retried, signed with the secret, at least once (the
        X-Chachaml-Event-Id header names the event). The subscription gets events from now.
        Example: {"url": "https://hooks.example.com/chachaml", "types": ["run.ended"]}.
        """
        new = ops.build_subscription(url, types, secret, caller_user(user))
        found = await ops.subscribe(store, new, allow_private=delivery.allow_private)
        return answer(found, f"Subscribed #{found.id}.\n{subscriptions_text([found])}")

    async def unsubscribe(
        id: Annotated[int, Field(ge=1, description="The subscription's id (list_subscriptions).")],
    ) -> Annotated[CallToolResult, SubscriptionList]:
        """Delete a webhook subscription; what of it is still queued is not sent.

        Example: {"id": 3}.
        """
        await ops.unsubscribe(store, id)
        left = await ops.list_subscriptions(store)
        text = f"Subscription #{id} deleted.\n{subscriptions_text(left)}"
        return answer(SubscriptionList(subscriptions=left), text)

    async def list_subscriptions() -> Annotated[CallToolResult, SubscriptionList]:
        """Every webhook subscription: target host, type patterns, deliveries and the last try.

        Example: {}.
        """
        found = await ops.list_subscriptions(store)
        return answer(SubscriptionList(subscriptions=found), subscriptions_text(found))

    return [subscribe, unsubscribe, list_subscriptions]
