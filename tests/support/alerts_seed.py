"""Alert rules over the store of :mod:`tests.support.mcp_seed`, for the UI and browser tests."""

from __future__ import annotations

from datetime import UTC, datetime

from chachaml.records.alerts import DeliveryAttempt, NewAlertEvent
from chachaml.store.server_state import ServerStore
from chachaml.tools import alerts as alert_ops
from tests.support.mcp_seed import NEW

HOOK = "https://hooks.example.com/services/T000/B000/secret-path"
EVIL_RULE = "<img src=x onerror=alert(1)>"
FIRED_AT = datetime(2025, 3, 6, 12, 0, tzinfo=UTC).timestamp()


async def seed_alerts(store: ServerStore) -> None:
    """Rule ``acc-low`` (signed webhook) fired for run NEW, delivered on the second attempt;
    a staleness rule with a hostile name that never fired."""
    rule = alert_ops.build_rule(
        "acc-low",
        "ana",
        metric_key="acc",
        op="<",
        threshold=0.5,
        experiment="mnist",
        webhook_url=HOOK,
        secret="s3cret",
    )
    await alert_ops.set_alert(store, rule)
    stale = alert_ops.build_rule(EVIL_RULE, "ana", no_completed_run_hours=24)
    await alert_ops.set_alert(store, stale)
    event = await store.fire_alert(
        "acc-low",
        NewAlertEvent(
            subject=NEW,
            run_id=NEW,
            experiment="mnist",
            value=0.4,
            threshold=0.5,
            message=f"acc is 0.4 on run {NEW} (mnist): acc < 0.5",
            fired_at=FIRED_AT,
            webhook=True,
        ),
    )
    assert event is not None
    at = datetime.fromtimestamp(FIRED_AT, UTC)
    failed = DeliveryAttempt(at=at, status_code=500, seconds=0.12)
    await store.record_delivery(event.id, failed, "pending")
    ok = DeliveryAttempt(at=at, status_code=200, seconds=0.05)
    await store.record_delivery(event.id, ok, "delivered")
