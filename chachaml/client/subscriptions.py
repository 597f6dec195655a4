"""Webhook subscriptions from Python: POST the events you care about to a URL.

``chachaml.subscribe(url, types=["run.*"], secret=...)`` acts through the default client;
``Subscriptions(client)`` binds the same API to another :class:`~chachaml.Client`. The
server (``chachaml serve``, or ``chachaml alerts deliver``) sends the deliveries from its
webhook queue, as it sends alert webhooks: nothing is sent from the training process::

    sub = ml.subscribe("https://hooks.example.com/chachaml", types=["run.ended"],
                       secret="s3cret")
    ml.subscriptions()       # each with its deliveries counted and its last try
    ml.unsubscribe(sub.id)
"""

from __future__ import annotations

from collections.abc import Sequence

from chachaml.client.default import ClientBound
from chachaml.records.subscriptions import Subscription
from chachaml.tools import subscriptions as ops


class Subscriptions(ClientBound):
    """The subscriptions API bound to a client (the default client when none is given)."""

    def subscribe(
        self, url: str, types: Sequence[str] | None = None, *, secret: str | None = None
    ) -> Subscription:
        """POST each event whose type matches one of ``types`` to ``url``, from now on.

        ``types`` are patterns (``run.*``, ``model.stage_changed``; every type when left
        out); each must match a known type. The body is the event's CloudEvent, its id also
        in ``X-Chachaml-Event-Id``; with ``secret`` each delivery is HMAC-signed as an
        alert's webhook is. ``url`` must be http(s) on a public address (loopback and private
        ones need ``CHACHAML_WEBHOOK_ALLOW_PRIVATE=true``). Against a server, it needs admin.
        """
        client = self.client
        new = ops.build_subscription(url, types, secret, client.current_user())
        allow = client.settings.webhook_allow_private
        return client.op(ops.subscribe, new, allow_private=allow)

    def unsubscribe(self, subscription_id: int) -> None:
        """Delete a subscription: nothing more is sent to it; ``NotFound`` if absent."""
        self.client.op(ops.unsubscribe, subscription_id)

    def subscriptions(self) -> list[Subscription]:
        """Every subscription (targets by host only), with its deliveries counted."""
        return self.client.op(ops.list_subscriptions)


_default = Subscriptions()

subscribe = _default.subscribe
unsubscribe = _default.unsubscribe
subscriptions = _default.subscriptions

__all__ = ["Subscription", "Subscriptions", "subscribe", "subscriptions", "unsubscribe"]
