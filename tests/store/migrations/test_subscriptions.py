"""Migration 20 on each backend: the webhook queue takes subscriptions' rows beside alerts',
and an alert delivery queued before it (SQLite rebuilds the table) is still claimed, whole."""

from __future__ import annotations

import time

import pytest

from chachaml.records.alerts import NewAlert, NewAlertEvent
from chachaml.store.migrations.runner import migrate
from chachaml.store.sql.database import Database, IntegrityViolation
from chachaml.store.sql.store import SQLStore

pytestmark = pytest.mark.anyio


async def test_a_queued_alert_delivery_survives_the_migration_and_owners_stay_exclusive(
    database: Database,
) -> None:
    await database.transact(lambda db: migrate(db, database.dialect, up_to=19))
    old = SQLStore(database)
    await old.set_alert(NewAlert(name="acc-low", kind="silent_run", window_seconds=60.0,
                                 webhook_url="https://hooks.test/x", secret="s3",
                                 created_by="ana"))  # fmt: skip
    event = NewAlertEvent(subject="r1", message="quiet", fired_at=time.time(), webhook=True,
                          payload={"text": "quiet"})  # fmt: skip
    fired = await old.fire_alert("acc-low", event)
    assert fired is not None
    await database.transact(lambda db: migrate(db, database.dialect))
    store = SQLStore(database)
    now = time.time()
    (claimed,) = await store.claim_deliveries(now, now + 60, 10)
    assert (claimed.event_id, claimed.alert, claimed.subscription, claimed.secret) == (
        fired.id, "acc-low", None, "s3",
    )  # fmt: skip
    assert claimed.payload == {"text": "quiet"} and claimed.attempt == 1
    with pytest.raises(IntegrityViolation):  # a row belongs to an alert event or a subscription
        await database.transact(
            lambda db: db.execute(
                "INSERT INTO webhook_deliveries (url, payload, next_attempt_at, status,"
                " created_at, updated_at) VALUES ('u', '{}', 0, 'pending', 0, 0)"
            )
        )
