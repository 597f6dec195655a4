"""Webhook subscriptions to the event stream, as every surface returns them.

A subscription is a URL and type patterns (``run.*``): each event of the outbox
(:mod:`chachaml.records.events`) whose type matches is POSTed to the URL as its CloudEvent,
through the same signed, retried, logged queue as alert webhooks. Like alert rules, a
subscription is shown with its target's host only (a webhook URL often holds a token) and
whether its deliveries are signed, never the secret.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NewSubscription(_Model):
    """A validated subscription for the store to create."""

    url: str
    types: tuple[str, ...]
    secret: str | None = Field(default=None, repr=False)
    created_by: str


class Subscription(_Model):
    """A subscription as lists show it, with its delivery log in counts and its last try.

    ``after`` is the outbox cursor: events up to this id are queued (or were before it
    existed); ``pending`` are queued and not yet delivered or given up on.
    """

    id: int
    target: str = Field(description="the URL's scheme and host (the path is not shown)")
    types: list[str]
    signed: bool
    created_by: str
    created_at: datetime
    after: int
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
