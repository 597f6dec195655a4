"""The ``ApiStore`` protocol: API tokens and idempotency keys, the HTTP API's state.

Contract for implementers (on top of the ``Store`` contract):

- Tokens are stored only as hashes (``token_hash``, a hex sha256) with a short ``hint`` (the
  first characters, enough to tell tokens apart in a listing); ``find_token`` looks one up by
  hash and returns ``None`` for an unknown or revoked hash. A hash is unique. A revoked token
  stays listed (with its revocation time) and never answers again; ``has_tokens`` counts only
  tokens that are not revoked.
- Idempotency keys are scoped to a user. ``claim_idempotency_key`` is one transaction that
  either records a new in-flight claim (and returns ``None``) or returns the row already there,
  so two requests with one key (any tasks, processes or replicas) never both run; the row
  says whether the first request finished (``status`` > 0, with the response body) or is
  still in flight (``status`` 0). An in-flight claim older than the ``lease`` (its server
  died mid-request) is taken over atomically: of racing claims exactly one gets ``None``.
  ``release_idempotency_key`` deletes an in-flight claim whose request failed, so a retry
  can run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
RANK: dict[Scope, int] = {"read": 1, "write": 2, "admin": 3}


def allows(granted: Scope, needed: Scope) -> bool:
    """Whether a grant covers a need: admin covers write, write covers read."""
    return RANK[granted] >= RANK[needed]


@dataclass(frozen=True)
class TokenOwner:
    """Who a token belongs to, and what it may do."""

    user: str
    scope: Scope


@dataclass(frozen=True)
class TokenInfo:
    """A token as ``chachaml token list`` shows it: never the token, only its hint."""

    id: int
    user: str
    scope: Scope
    hint: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class IdempotentReply:
    """What is stored under an idempotency key: the request's hash and, once done, its reply."""

    request_hash: str
    status: int
    body: str | None

    @property
    def in_flight(self) -> bool:
        """The first request with this key has not finished."""
        return self.status == 0


class ApiStore(Protocol):
    """Persistence for API tokens and idempotent replies."""

    async def create_token(self, user: str, scope: Scope, token_hash: str, hint: str = "") -> int:
        """Record a token (by hash) for a user with a scope; returns its id."""
        ...

    async def find_token(self, token_hash: str) -> TokenOwner | None:
        """The owner of a token hash, or ``None`` (unknown or revoked)."""
        ...

    async def has_tokens(self) -> bool:
        """Whether any token that is not revoked exists."""
        ...

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        ...

    async def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke a token by id (again is harmless); ``NotFound`` for an unknown id."""
        ...

    async def claim_idempotency_key(
        self, user: str, key: str, request_hash: str, lease: float = 60.0
    ) -> IdempotentReply | None:
        """Claim a key, or take over a claim older than ``lease`` seconds.

        ``None`` when claimed now, else what is stored.
        """
        ...

    async def finish_idempotency_key(self, user: str, key: str, status: int, body: str) -> None:
        """Store the reply of the request that claimed the key."""
        ...

    async def release_idempotency_key(self, user: str, key: str) -> None:
        """Drop an in-flight claim (its request failed and may be retried)."""
        ...
