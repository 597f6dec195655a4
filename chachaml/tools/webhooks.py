"""Delivering alert events to webhooks: a Slack-compatible body, signed, POSTed with retries.

Each attempt is bounded by a timeout; connection errors, timeouts, HTTP 429 and 5xx answers
are retried with exponential backoff, other answers end the delivery. Every attempt and the
final outcome are recorded on the event. Delivery never raises for the webhook's sake.

When the rule has a secret, the request carries ``X-Chachaml-Timestamp`` (epoch seconds)
and ``X-Chachaml-Signature: v1=<hex>``, the HMAC-SHA256 of ``v1:{timestamp}:{body}`` under
the secret; a receiver recomputes it with :func:`signature` and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import anyio

from chachaml.alert_models import Alert, AlertEvent, AlertRule, DeliveryAttempt, DeliveryStatus
from chachaml.models import to_datetime
from chachaml.settings import DEFAULT_BASE_URL, Settings
from chachaml.store.protocol import Store

SIGNATURE_HEADER = "X-Chachaml-Signature"
TIMESTAMP_HEADER = "X-Chachaml-Timestamp"
MAX_ERROR = 500


@dataclass(frozen=True)
class Delivery:
    """How events are delivered: where run pages live, and the timeout and retry budget.

    ``backoff`` is the pause before the second attempt; each later pause doubles.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> Delivery:
        """Delivery as configured (``CHACHAML_BASE_URL``, ``CHACHAML_ALERT_*``)."""
        return cls(
            base_url=settings.base_url,
            timeout=settings.alert_timeout,
            attempts=settings.alert_attempts,
        )


def run_url(base_url: str, run_id: str) -> str:
    """The UI page of a run."""
    return f"{base_url.rstrip('/')}/runs/{run_id}"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def condition(rule: Alert) -> str:
    """The rule's condition in words, e.g. ``accuracy < 0.8``."""
    if rule.kind == "threshold":
        return f"{rule.metric_key} {rule.op} {_number(rule.threshold)}"
    if rule.kind == "drop":
        against = (
            f"the production version of {rule.baseline_model}"
            if rule.baseline_model is not None
            else f"the mean of the last {rule.baseline_runs} completed runs"
        )
        return f"{rule.metric_key} drops more than {_number(rule.drop_pct)}% below {against}"
    window = rule.window_seconds or 0.0
    if rule.kind == "no_completed_run":
        return f"no completed run for {_number(window / 3600)} h"
    return f"a running run silent for {_number(window / 60)} min"


def payload(rule: AlertRule, event: AlertEvent, base_url: str) -> dict[str, Any]:
    """The Slack-compatible body: ``text`` for notifications, ``blocks`` for the layout."""
    link = run_url(base_url, event.run_id) if event.run_id else None
    run_text = f"<{link}|{event.run_id}>" if link else "—"
    fields = [
        ("Rule", f"{rule.name} ({rule.kind})"),
        ("Run", run_text),
        ("Experiment", event.experiment or "—"),
        ("Value", _number(event.value)),
        ("Threshold", condition(rule)),
    ]
    if event.baseline is not None:
        fields.append(("Baseline", _number(event.baseline)))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"chachaml alert: {rule.name}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": event.message}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
        },
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open run"},
                        "url": link,
                    }
                ],
            }
        )
    text = f"chachaml alert {rule.name!r}: {event.message}" + (f" {link}" if link else "")
    return {"text": text, "blocks": blocks}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Chachaml-Signature`` value for a body sent at ``timestamp``."""
    digest = hmac.new(
        secret.encode(), b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return f"v1={digest}"


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def deliver(
    store: Store, rule: AlertRule, event: AlertEvent, delivery: Delivery
) -> AlertEvent:
    """POST the event to the rule's webhook, recording each attempt; returns the event updated.

    Webhook failures end as delivery status ``failed``; only a store failure raises.
    """
    import httpx  # only processes that deliver alerts pay for importing httpx

    assert rule.webhook_url is not None
    body = json.dumps(payload(rule, event, delivery.base_url)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "chachaml-alerts"}
    attempts: list[DeliveryAttempt] = []
    status: DeliveryStatus = "failed"
    async with httpx.AsyncClient(timeout=delivery.timeout) as http:
        for number in range(1, delivery.attempts + 1):
            if rule.secret is not None:
                stamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = signature(rule.secret, stamp, body)
            started = time.time()
            code: int | None = None
            error: str | None = None
            try:
                with anyio.fail_after(delivery.timeout):
                    answer = await http.post(rule.webhook_url, content=body, headers=headers)
                code = answer.status_code
                if not answer.is_success:
                    error = f"HTTP {code}: {answer.text[:200]}"
            except (TimeoutError, httpx.TimeoutException):
                error = f"timed out after {delivery.timeout:g}s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            attempt = DeliveryAttempt(
                at=to_datetime(started),
                status_code=code,
                error=error[:MAX_ERROR] if error else None,
                seconds=round(time.time() - started, 3),
            )
            attempts.append(attempt)
            again = error is not None and (code is None or _retryable(code))
            last = number == delivery.attempts or not again
            status = "delivered" if error is None else ("failed" if last else "pending")
            await store.record_delivery(event.id, attempt, status)
            if last:
                break
            await anyio.sleep(delivery.backoff * 2 ** (number - 1))
    return event.model_copy(update={"delivery": status, "attempts": [*event.attempts, *attempts]})
