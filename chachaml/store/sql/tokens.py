"""API tokens, stored as hashes with a short hint; a revoked token never answers again."""

from __future__ import annotations

import time

from chachaml.errors import NotFound
from chachaml.store.server_state import Scope, TokenInfo, TokenOwner
from chachaml.store.sql.database import Database, Row, Tx, fetch


class Tokens:
    """API tokens, stored only as hashes."""

    def __init__(self, database: Database) -> None:
        self._db = database

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
            return int(found[0]["id"])

        return await self._db.transact(body)

    async def find_token(self, token_hash: str) -> TokenOwner | None:
        """The owner of a token hash that is not revoked."""
        found = await fetch(
            self._db,
            "SELECT user_name, scope FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        return TokenOwner(user=found[0]["user_name"], scope=found[0]["scope"]) if found else None

    async def has_tokens(self) -> bool:
        """Whether the table holds any token that is not revoked."""
        return bool(
            await fetch(
                self._db, "SELECT 1 AS found FROM api_tokens WHERE revoked_at IS NULL LIMIT 1"
            )
        )

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        rows = await fetch(
            self._db,
            "SELECT id, user_name, scope, hint, created_at, revoked_at FROM api_tokens ORDER BY id",
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

        return await self._db.transact(body)


def _token_info(row: Row) -> TokenInfo:
    return TokenInfo(
        id=int(row["id"]),
        user=row["user_name"],
        scope=row["scope"],
        hint=row["hint"],
        created_at=float(row["created_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
    )
