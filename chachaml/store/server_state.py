"""The ``ServerStore`` protocol: what only a server's database keeps, beside the ``Store``.

API tokens, idempotency keys, the webhook delivery queue, and the internals of evaluating
alert rules (recording a firing, the reads that decide one). SQLite and PostgreSQL implement
it; a client of a server (the remote store) does not: the server keeps this state.

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

Alert evaluation and webhook deliveries:

- ``fire_alert`` is the only way an event is recorded and is one transaction that first
  locks the rule's row, so that whatever the interleaving of tasks, threads or processes:
  a rule fires at most once per subject (a unique index backs this), and not again within
  its cooldown of its last firing. It returns ``None`` when it records nothing.
- ``fire_alert`` of an event with ``webhook`` set, for a rule with a webhook URL, queues one
  delivery (``event.payload`` as the body) in the same transaction: no event is left without
  its delivery, and none is delivered twice by construction of the queue below.
- ``claim_deliveries`` hands each due pending delivery to one caller only, whatever the
  number of processes or replicas (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), counting the try
  and leasing the row until ``lease_until`` (a caller that dies leaves it to be claimed
  again then). The queue survives restarts: it is a table.
Events (the outbox):

- Every write that changes what an event type reports (:mod:`chachaml.records.events`)
  writes its event in its own transaction: no event for a change rolled back, no change
  committed without its event. Ids are a store-wide sequence, and an event becomes visible
  only after every event with a lower id (PostgreSQL: a lock from id to commit), so a reader
  that resumes after the last id it saw misses nothing. Ids are never reused, even after
  pruning.
- ``read_events`` pages in id order; ``prune_events`` deletes by age (retention), and gives
  up on subscriptions' deliveries queued before then (counted failed).
- ``sweep_killed`` sends ``run.killed`` once for each running run whose heartbeat went stale,
  however many servers sweep.
- Sinks (brokers events are published to) keep a cursor each: ``claim_sink`` returns it to
  one owner at a time, leased until ``lease_until`` (an owner that dies leaves it to be
  claimed once the lease ends; of racing claims, at most one gets it); a new sink starts at
  0. ``advance_sink`` moves the cursor (never backwards) and renews the lease only while
  ``owner`` still holds it, and says whether it did; ``release_sink`` gives the lease up.
- ``listen_events`` calls its callback after this process commits events, and on PostgreSQL
  after any process does (``LISTEN chachaml_events``); readers poll every
  ``event_poll_seconds`` for the rest (other processes writing to a SQLite file).

- Subscriptions queue their events in the same queue: ``queue_subscribed_events`` queues,
  for each subscription behind the outbox's head, the matching events of the next page after
  its cursor and moves the cursor, in one transaction; each event is queued once per
  subscription however many processes call it (it returns how many events it read, so
  ``limit`` means there may be more). ``claim_deliveries`` hands out a
  subscription's rows one at a time, oldest first (none while an older one is pending), so
  they are sent in event order; with ``follow`` a claim of a head also takes that many of the
  rows after it, which no one else can claim meanwhile. ``record_subscription_deliveries``
  records tries: ``pending`` again at ``retry_at``, or final (counted on the subscription,
  row dropped); and makes claimed rows that were not sent due again.

- ``record_delivery`` appends one attempt to an event's list and sets its delivery status
  (and its queued delivery's: ``pending`` again at ``retry_at``, or final); attempts are kept
  in the order recorded. Attempts hold an error kind, never a receiver's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeGuard, runtime_checkable

from chachaml.errors import StoreUnavailable
from chachaml.records.alerts import (
    AlertEvent,
    DeliveryAttempt,
    DeliveryStatus,
    NewAlertEvent,
    PendingDelivery,
    SilentRun,
    StaleExperiment,
    TriedDelivery,
)
from chachaml.records.events import Event
from chachaml.records.runs import Experiment, MetricSummary
from chachaml.store.protocol import Store

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


@runtime_checkable
class ServerStore(Store, Protocol):
    """A ``Store`` that also keeps API tokens, idempotency keys, deliveries and alert firings."""

    # run edits only a server's API offers (MLflow's protocol: delete, restore, rename, untag)
    async def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of a run; ``NotFound`` if it has none of that key."""
        ...

    async def rename_run(self, run_id: str, name: str | None) -> None:
        """Give a run another name (``None``: unnamed)."""
        ...

    async def set_run_archived(self, run_id: str, archived: bool) -> None:
        """Archive one run (any status) or restore it; ``Conflict`` for a registered model's run.

        Archived runs are what MLflow calls deleted: kept, out of listings, restorable until
        ``delete_archived``.
        """
        ...

    async def metric_summaries_of_runs(
        self, run_ids: Sequence[str]
    ) -> dict[str, dict[str, MetricSummary]]:
        """Each metric's summary (latest value, step, time) for each of these runs, in one read.

        A run without metrics, or unknown, maps to an empty dict.
        """
        ...

    # experiments by id, as MLflow's protocol names them (an id never changes, a name may)
    async def get_experiment_by_id(self, experiment_id: int, brief: bool = False) -> Experiment:
        """One experiment by id, archived or not; ``NotFound`` if absent.

        ``brief`` leaves out the run count and last activity (reported as 0 and ``None``),
        which read every run of the experiment: for callers that need its name and state.
        """
        ...

    async def list_archived_experiments(self) -> list[Experiment]:
        """Every archived experiment, most recently active first."""
        ...

    async def experiment_names(self) -> dict[int, str]:
        """Each experiment not archived, id to name, read from the experiments alone.

        No run is read: cheap enough for every request, so that a replica never answers
        with names another replica has changed.
        """
        ...

    # API tokens
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

    # idempotency keys
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

    # alert evaluation
    async def fire_alert(self, name: str, event: NewAlertEvent) -> AlertEvent | None:
        """Record a firing unless the rule fired for this subject already or is cooling down.

        The event's delivery status starts ``pending`` when ``event.webhook`` is true, else
        ``none``.
        """
        ...

    async def stale_experiments(
        self, experiment: str | None, cutoff: float
    ) -> list[StaleExperiment]:
        """Experiments (all, or the one named) with no run completed at or after ``cutoff``.

        An experiment with no completed run at all counts only if created before ``cutoff``.
        """
        ...

    async def silent_runs(self, experiment: str | None, cutoff: float) -> list[SilentRun]:
        """Unarchived runs never ended whose latest metric point (or start) is before ``cutoff``."""
        ...

    # webhook deliveries
    async def record_delivery(
        self,
        event_id: int,
        attempt: DeliveryAttempt,
        status: DeliveryStatus,
        retry_at: float | None = None,
    ) -> None:
        """Append a delivery attempt to an event and set its delivery status.

        With ``status`` ``pending``, ``retry_at`` (epoch seconds) is when the next try is due.
        """
        ...

    async def claim_deliveries(
        self, now: float, lease_until: float, limit: int, follow: int = 0
    ) -> list[PendingDelivery]:
        """Claim up to ``limit`` pending deliveries due at ``now``, leased until ``lease_until``.

        With each subscription's head come up to ``follow`` of its next rows, in id order.
        """
        ...

    async def pending_deliveries(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the earliest is due (epoch seconds)."""
        ...

    async def queue_subscribed_events(self, limit: int) -> int:
        """Queue the next ``limit`` events for the subscriptions behind; how many were read."""
        ...

    async def record_subscription_deliveries(
        self, tried: Sequence[TriedDelivery], unsent: Sequence[int], now: float
    ) -> None:
        """Record tries of subscriptions' claimed rows (by queue id), in one transaction.

        ``unsent`` rows (claimed but held back) are due again at ``now``, their claim not
        counted as a try. Rows that are gone record nothing.
        """
        ...

    # events (the outbox)
    async def read_events(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events with ids above ``after``, in id order."""
        ...

    async def last_event_id(self) -> int:
        """The id of the newest event kept (0 when there is none)."""
        ...

    async def prune_events(self, before: float) -> int:
        """Delete events older than ``before`` (epoch seconds); returns how many."""
        ...

    async def sweep_killed(self, now: float) -> list[str]:
        """Send ``run.killed`` once per running run whose heartbeat is stale at ``now``.

        Returns the ids of the runs it sent the event for.
        """
        ...

    async def claim_sink(self, name: str, owner: str, now: float, lease_until: float) -> int | None:
        """The last event id published to sink ``name``, if ``owner`` holds or takes its lease.

        ``None`` while another owner's lease runs.
        """
        ...

    async def advance_sink(
        self, name: str, owner: str, last_seq: int, now: float, lease_until: float
    ) -> bool:
        """Record ``last_seq`` as published to ``name`` and renew the lease.

        ``False`` (nothing changed) if ``owner`` no longer holds the lease.
        """
        ...

    async def release_sink(self, name: str, owner: str) -> None:
        """Give up ``owner``'s lease of sink ``name`` (another may claim it at once)."""
        ...

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from any thread) whenever events may have been committed.

        Runs until cancelled.
        """
        ...

    @property
    def event_poll_seconds(self) -> float:
        """How often an event reader polls for what ``listen_events`` does not hear."""
        ...


def is_server_store(store: Store) -> TypeGuard[ServerStore]:
    """Whether a store is a database a server can run on, rather than a remote store.

    One attribute, not ``isinstance`` against the protocol: a runtime protocol check walks
    all of its sixty-odd members (milliseconds), and this runs on every metric batch a server
    receives. The ``ServerStore`` methods come together: a database has them all, a remote
    store none.
    """
    return callable(getattr(store, "fire_alert", None))


def require_server_state(store: Store, what: str) -> ServerStore:
    """``store`` as a :class:`ServerStore`, or ``StoreUnavailable`` saying ``what`` needs one.

    A client of a server (the remote store) keeps no server state: the server it talks to
    does that work (it evaluates alerts on the runs it ends, for one).
    """
    if is_server_store(store):
        return store
    raise StoreUnavailable(
        f"{what} needs the database itself, not a client of a server ({store.url}); the server"
        " does it, or point CHACHAML_STORE at the database"
    )
