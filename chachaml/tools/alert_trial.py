"""Test-firing a rule: its webhook gets a clearly marked test event, and nothing is recorded.

A person setting up a webhook wants to see it work before a run goes wrong. The test body is
the rule's usual Slack-compatible body with ``test: true`` and a ``[test]`` prefix, sent by
:func:`chachaml.tools.webhooks.send` (the same target checks, pinning and signature) with the
same retries as a real delivery, inline, so the caller sees each attempt. No event is stored,
``last_fired_at`` is untouched and the cooldown does not start.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.alerts import AlertTrial, DeliveryAttempt, NewAlertEvent, PendingDelivery
from chachaml.store.protocol import ServerEvaluatedAlerts, Store
from chachaml.store.server_state import is_server_store
from chachaml.tools.deliveries import http_client
from chachaml.tools.webhooks import Delivery, payload, retryable, send

TEST_MESSAGE = "This is a test event sent from chachaml to check the webhook; no alert fired."


def marked_as_test(body: dict[str, Any]) -> dict[str, Any]:
    """A rule's webhook body marked as a test, so no receiver takes it for a real firing."""
    return {**body, "text": "[test] " + str(body.get("text", "")), "test": True}


async def send_test_alert(store: Store, name: str, delivery: Delivery) -> AlertTrial:
    """Send a rule's webhook a test event now, retrying as a real delivery would.

    Only the server's own store holds the webhook URL and secret: a remote store has its
    server send it, with the server's delivery settings (``delivery`` is then unused).
    ``NotFound`` for an unknown rule; ``InvalidInput`` for one without a webhook. A failed
    delivery is an answer (``delivered`` false, each attempt's error), not an exception.
    """
    wanted = v.name(name, "alert name")
    if not is_server_store(store):
        if isinstance(store, ServerEvaluatedAlerts):
            return await store.send_test_alert(wanted)
        raise InvalidInput(f"the store at {store.url} cannot send test events")
    rule = await store.get_alert(wanted)
    if rule.webhook_url is None:
        raise InvalidInput(f"alert {rule.name!r} has no webhook to test; give it a webhook URL")
    event = NewAlertEvent(
        subject="test",
        experiment=rule.experiment,
        message=TEST_MESSAGE,
        fired_at=time.time(),
        webhook=True,
    )
    body = marked_as_test(payload(rule, event, delivery.base_url))
    attempts: list[DeliveryAttempt] = []
    async with http_client(delivery) as http:
        for number in range(1, delivery.attempts + 1):
            item = PendingDelivery(event_id=0, alert=rule.name, url=rule.webhook_url,
                                   payload=body, secret=rule.secret, attempt=number)  # fmt: skip
            attempt = await send(http, item, delivery)
            attempts.append(attempt)
            if attempt.error is None or not retryable(attempt) or number == delivery.attempts:
                break
            await anyio.sleep(delivery.retry_delay(number))
    return AlertTrial(
        alert=rule.name,
        webhook=rule.public().webhook,
        delivered=attempts[-1].error is None,
        attempts=attempts,
        payload=body,
    )
