"""The sinks part of the ServerStore contract: one cursor per broker, leased to one owner."""

from __future__ import annotations

import anyio
import pytest

from chachaml.store import ServerStore, open_store

pytestmark = [pytest.mark.anyio, pytest.mark.contract, pytest.mark.server_store]


async def test_a_new_sink_starts_at_the_beginning_and_moves_only_for_its_owner(
    store: ServerStore,
) -> None:
    assert await store.claim_sink("nats://h:4222", "a", 100.0, 130.0) == 0
    assert await store.advance_sink("nats://h:4222", "a", 7, 101.0, 131.0)
    assert not await store.advance_sink("nats://h:4222", "b", 9, 101.0, 131.0)
    assert not await store.advance_sink("nats://h:4222", "a", 5, 102.0, 132.0)  # never back
    assert await store.claim_sink("nats://h:4222", "a", 103.0, 133.0) == 7
    assert await store.claim_sink("redis://h:6379/0/x", "b", 103.0, 133.0) == 0  # its own row


async def test_another_owner_waits_for_the_lease_to_end_or_be_released(
    store: ServerStore,
) -> None:
    assert await store.claim_sink("s", "a", 100.0, 130.0) == 0
    assert await store.advance_sink("s", "a", 3, 101.0, 131.0)
    assert await store.claim_sink("s", "b", 120.0, 150.0) is None  # a's lease runs
    assert await store.claim_sink("s", "b", 132.0, 162.0) == 3  # ended: b takes over
    assert not await store.advance_sink("s", "a", 4, 133.0, 163.0)  # a stalled past it
    await store.release_sink("s", "a")  # not a's to release any more
    assert await store.claim_sink("s", "a", 134.0, 164.0) is None
    await store.release_sink("s", "b")
    assert await store.claim_sink("s", "a", 135.0, 165.0) == 3


async def test_of_racing_claims_one_wins(store_url: str) -> None:
    stores = [await open_store(store_url) for _ in range(4)]
    try:
        won: list[str] = []

        async def claim(s: ServerStore, owner: str) -> None:
            if await s.claim_sink("s", owner, 100.0, 130.0) is not None:
                won.append(owner)

        async with anyio.create_task_group() as tasks:
            for i, s in enumerate(stores):
                tasks.start_soon(claim, s, f"o{i}")
        assert len(won) == 1
    finally:
        for s in stores:
            await s.close()
