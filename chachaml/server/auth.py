"""Bearer tokens: who is calling, and whether they may read or write.

Tokens come from ``CHACHAML_TOKENS`` (``user:token`` pairs, write scope) or from the store
(``chachaml token create``, hashed, with a ``read`` or ``write`` scope). Writes need a token
with write scope; reads need any valid token when ``protect_reads`` is on. With ``open_writes``
(no tokens configured on a loopback server, or ``--insecure``) requests without a token are
allowed and attributed to the ``X-Chachaml-User`` header, else ``anonymous``; a token that is
sent is still checked.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import Request

from chachaml.errors import InvalidInput
from chachaml.server.api_errors import ApiError
from chachaml.store.api_protocol import SCOPES, Scope, TokenOwner
from chachaml.store.protocol import Store

ANONYMOUS = "anonymous"
USER_HEADER = "x-chachaml-user"
TOKEN_PREFIX = "chml_"


def hash_token(token: str) -> str:
    """The stored form of a token: its hex sha256 (tokens are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(store: Store, user: str, scope: str = "write") -> str:
    """Create a token for a user; returns it (only its hash is stored)."""
    if not isinstance(user, str) or not user.strip() or ":" in user or "," in user:
        raise InvalidInput(f"user must be a non-empty name without ':' or ',', got {user!r}")
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    checked: Scope = "write" if scope == "write" else "read"
    await store.create_token(user.strip(), checked, hash_token(token))
    return token


@dataclass(frozen=True)
class Auth:
    """The server's token policy; ``static`` maps token hashes to users (write scope)."""

    static: dict[str, str] = field(default_factory=dict, repr=False)
    protect_reads: bool = False
    open_writes: bool = False

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str]], *, protect_reads: bool = False, open_writes: bool
    ) -> Auth:
        """A policy with the ``(user, token)`` pairs of ``CHACHAML_TOKENS``."""
        static = {hash_token(token): user for user, token in pairs}
        return cls(static=static, protect_reads=protect_reads, open_writes=open_writes)

    async def _owner(self, store: Store, token: str) -> TokenOwner | None:
        digest = hash_token(token)
        user = self.static.get(digest)
        if user is not None:
            return TokenOwner(user=user, scope="write")
        return await store.find_token(digest)

    async def authorize(self, request: Request, store: Store, scope: Scope) -> str:
        """The calling user, or ``ApiError`` 401 (no or bad token) / 403 (read-only token)."""
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if not header:
            if scope == "write" and not self.open_writes:
                raise ApiError(401, "this endpoint needs an Authorization: Bearer <token> header")
            if scope == "read" and self.protect_reads:
                raise ApiError(401, "reads need an Authorization: Bearer <token> header")
            return request.headers.get(USER_HEADER) or ANONYMOUS
        if kind.lower() != "bearer" or not token.strip():
            raise ApiError(401, "the Authorization header must be 'Bearer <token>'")
        owner = await self._owner(store, token.strip())
        if owner is None:
            raise ApiError(401, "unknown or revoked token")
        if scope == "write" and owner.scope != "write":
            raise ApiError(403, f"the token of {owner.user!r} is read-only")
        return owner.user
