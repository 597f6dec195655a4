"""Finding 7: racing claims of an expired idempotency key, in the store.

The crashes themselves (``chachaml serve`` killed with SIGKILL, a reply lost on the way, a key
left in flight) are in :mod:`tests.e2e.test_idempotency_crash`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio

from chachaml.store import open_store


def test_one_of_racing_claims_takes_over_an_expired_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"

    async def race() -> list[bool]:
        store = await open_store(url)
        try:
            assert await store.claim_idempotency_key("u", "k", "h") is None
            with sqlite3.connect(tmp_path / "race.db") as db:  # the claimant died 2 min ago
                db.execute("UPDATE idempotency_keys SET created_at = created_at - 120")
            results: list[bool] = []

            async def claim() -> None:
                results.append(await store.claim_idempotency_key("u", "k", "h") is None)

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(claim)
            return results
        finally:
            await store.close()

    assert sorted(anyio.run(race)) == [False, False, False, False, True]
