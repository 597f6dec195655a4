"""API tokens: made, listed and revoked against a store; only their hashes are kept.

A token is ``chml_`` and 43 random URL-safe characters. The store keeps its sha256 and a
hint (its first 12 characters) so ``chachaml token list`` can tell tokens apart without
being able to use them. Scopes: ``read`` (every read), ``write`` (plus tracking and registry
writes), ``admin`` (plus deletes and webhook subscriptions to the events). Who may do what with a
token is decided by the access layer (:mod:`chachaml.server.access`).
"""

from __future__ import annotations

import hashlib
import secrets

from chachaml.errors import InvalidInput
from chachaml.store.server_state import SCOPES, Scope, ServerStore, TokenInfo

TOKEN_PREFIX = "chml_"
HINT_LENGTH = 12


def hash_token(token: str) -> str:
    """The stored form of a token: its hex sha256 (tokens are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _scope(scope: str) -> Scope:
    for known in SCOPES:
        if scope == known:
            return known
    raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")


async def create_token(
    store: ServerStore, user: str, scope: str = "write"
) -> tuple[str, TokenInfo]:
    """Create a token for a user; returns it (shown once, only its hash is stored) and its row."""
    if not isinstance(user, str) or not user.strip() or ":" in user or "," in user:
        raise InvalidInput(f"user must be a non-empty name without ':' or ',', got {user!r}")
    if len(user) > 200 or "\x00" in user:
        raise InvalidInput("user must be at most 200 characters, without NUL")
    checked = _scope(scope)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = await store.create_token(
        user.strip(), checked, hash_token(token), token[:HINT_LENGTH]
    )
    info = next(t for t in await store.list_tokens() if t.id == token_id)
    return token, info


async def list_tokens(store: ServerStore) -> list[TokenInfo]:
    """Every token of the store, revoked ones included."""
    return await store.list_tokens()


async def revoke_token(store: ServerStore, token: str) -> TokenInfo:
    """Revoke a token named by its id, its hint, or the token itself."""
    tokens = await store.list_tokens()
    text = token.strip()
    if text.isdigit():
        return await store.revoke_token(int(text))
    if text.startswith(TOKEN_PREFIX) and len(text) > HINT_LENGTH:
        digest_hint = text[:HINT_LENGTH]
        matches = [t for t in tokens if t.hint == digest_hint]
    else:
        matches = [t for t in tokens if t.hint == text]
    if not matches:
        raise InvalidInput(f"no token with id or hint {text!r}: see `chachaml token list`")
    if len(matches) > 1:
        ids = ", ".join(str(t.id) for t in matches)
        raise InvalidInput(f"{len(matches)} tokens share the hint {text!r}: revoke by id ({ids})")
    return await store.revoke_token(matches[0].id)
