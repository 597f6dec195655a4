"""The ServerStore contract on every backend: hashed tokens and idempotency-key claims."""

from __future__ import annotations

import anyio
import pytest

from chachaml.store import ServerStore

pytestmark = pytest.mark.anyio


async def test_a_token_is_found_by_its_hash_with_its_user_and_scope(store: ServerStore) -> None:
    assert not await store.has_tokens()
    await store.create_token("ada", "write", "a" * 64)
    assert await store.has_tokens()
    owner = await store.find_token("a" * 64)
    assert owner is not None and (owner.user, owner.scope) == ("ada", "write")
    assert await store.find_token("b" * 64) is None


async def test_only_one_of_racing_claims_on_a_key_wins(store: ServerStore) -> None:
    results: list[object] = []

    async def claim() -> None:
        results.append(await store.claim_idempotency_key("ada", "k1", "h"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(claim)
    assert results.count(None) == 1
    assert all(r.in_flight for r in results if r is not None)  # type: ignore[attr-defined]


async def test_a_finished_claim_returns_the_stored_reply(store: ServerStore) -> None:
    assert await store.claim_idempotency_key("ada", "k1", "h") is None
    await store.finish_idempotency_key("ada", "k1", 201, '{"id": "r1"}')
    reply = await store.claim_idempotency_key("ada", "k1", "h")
    assert reply is not None and not reply.in_flight
    assert (reply.request_hash, reply.status, reply.body) == ("h", 201, '{"id": "r1"}')
    assert await store.claim_idempotency_key("bob", "k1", "h") is None  # keys are per user


async def test_a_released_claim_can_be_claimed_again(store: ServerStore) -> None:
    assert await store.claim_idempotency_key("ada", "k1", "h") is None
    await store.release_idempotency_key("ada", "k1")
    assert await store.claim_idempotency_key("ada", "k1", "h") is None
