"""API tokens and idempotency keys in portable SQL: a mixin of ``SQLStore``.

The primary key ``(user_name, key)`` of ``idempotency_keys`` makes a claim atomic on both
backends: ``INSERT ... ON CONFLICT DO NOTHING`` inserts for exactly one of racing requests.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from chachaml.errors import NotFound
from chachaml.store.api_protocol import IdempotentReply, Scope, TokenInfo, TokenOwner
from chachaml.store.sql_driver import Row, Tx

T = TypeVar("T")


class SQLApi:
    """The :class:`~chachaml.store.api_protocol.ApiStore` methods of SQLStore."""

    if TYPE_CHECKING:  # provided by SQLStore

        async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _query(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def create_token(self, user: str, scope: Scope, token_hash: str, hint: str = "") -> int:
        """Record a token hash; returns the token's id."""

        async def body(db: Tx) -> int:
            await db.execute(
                "INSERT INTO api_tokens (user_name, scope, token_hash, hint, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (user, scope, token_hash, hint, time.time()),
            )
            found = await db.fetchall(
                "SELECT id FROM api_tokens WHERE token_hash = ?", (token_hash,)
            )
            return int(found[0][0])

        return await self._transact(body)

    async def find_token(self, token_hash: str) -> TokenOwner | None:
        """The owner of a token hash that is not revoked."""
        found = await self._fetch(
            "SELECT user_name, scope FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        return TokenOwner(user=found[0][0], scope=found[0][1]) if found else None

    async def has_tokens(self) -> bool:
        """Whether the table holds any token that is not revoked."""
        return bool(await self._fetch("SELECT 1 FROM api_tokens WHERE revoked_at IS NULL LIMIT 1"))

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        rows = await self._fetch(
            "SELECT id, user_name, scope, hint, created_at, revoked_at FROM api_tokens ORDER BY id"
        )
        return [_token_info(row) for row in rows]

    async def revoke_token(self, token_id: int) -> TokenInfo:
        """Set the revocation time once; ``NotFound`` for an unknown id."""

        async def body(db: Tx) -> TokenInfo:
            await db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), token_id),
            )
            rows = await db.fetchall(
                "SELECT id, user_name, scope, hint, created_at, revoked_at FROM api_tokens"
                " WHERE id = ?",
                (token_id,),
            )
            if not rows:
                raise NotFound(f"no token with id {token_id}")
            return _token_info(rows[0])

        return await self._transact(body)

    async def claim_idempotency_key(
        self, user: str, key: str, request_hash: str, lease: float = 60.0
    ) -> IdempotentReply | None:
        """Insert an in-flight claim, take over one older than ``lease``, or return the row.

        A claim left in flight by a server that died is taken over by one UPDATE whose
        condition includes the old ``created_at``: of racing retries exactly one changes the
        row (the others see the new time), so only one runs the request again.
        """

        async def body(db: Tx) -> IdempotentReply | None:
            now = time.time()
            claimed = await db.execute(
                "INSERT INTO idempotency_keys (user_name, key, request_hash, status, created_at)"
                " VALUES (?, ?, ?, 0, ?) ON CONFLICT (user_name, key) DO NOTHING",
                (user, key, request_hash, now),
            )
            if claimed:
                return None
            taken = await db.execute(
                "UPDATE idempotency_keys SET created_at = ? WHERE user_name = ? AND key = ?"
                " AND request_hash = ? AND status = 0 AND created_at < ?",
                (now, user, key, request_hash, now - lease),
            )
            if taken:
                return None
            row = (
                await db.fetchall(
                    "SELECT request_hash, status, body FROM idempotency_keys"
                    " WHERE user_name = ? AND key = ?",
                    (user, key),
                )
            )[0]
            return IdempotentReply(request_hash=row[0], status=row[1], body=row[2])

        return await self._transact(body)

    async def finish_idempotency_key(self, user: str, key: str, status: int, body: str) -> None:
        """Store the reply under the key, unless a reply is already there (a takeover's)."""

        async def write(db: Tx) -> None:
            await db.execute(
                "UPDATE idempotency_keys SET status = ?, body = ?"
                " WHERE user_name = ? AND key = ? AND status = 0",
                (status, body, user, key),
            )

        await self._transact(write)

    async def release_idempotency_key(self, user: str, key: str) -> None:
        """Delete an in-flight claim."""

        async def write(db: Tx) -> None:
            await db.execute(
                "DELETE FROM idempotency_keys WHERE user_name = ? AND key = ? AND status = 0",
                (user, key),
            )

        await self._transact(write)


def _token_info(row: Row) -> TokenInfo:
    return TokenInfo(
        id=int(row[0]),
        user=row[1],
        scope=row[2],
        hint=row[3],
        created_at=float(row[4]),
        revoked_at=None if row[5] is None else float(row[5]),
    )
