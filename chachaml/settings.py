"""Configuration read from the environment, in one place.

Precedence: explicit arguments (``use_store``, CLI flags) win over ``CHACHAML_*``
environment variables, which win over the usual ``AWS_*`` variables (for an ``s3://``
artifact root), which win over the defaults. Nothing else in chachaml reads
``os.environ`` for configuration.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DEFAULT_STORE = "sqlite:///./chachaml.db"
DEFAULT_ARTIFACTS = "./chachaml-artifacts/"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def os_user() -> str:
    """The operating-system user name, or ``"unknown"`` when it cannot be found."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _first(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class S3Settings:
    """How to reach an ``s3://`` artifact root; ``None`` leaves a value to the AWS defaults.

    With no keys, the library's AWS credential chain applies (web identity, container
    and instance credentials). An ``http://`` endpoint (MinIO on a private network) is allowed.
    """

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    checksum: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        """``CHACHAML_S3_*`` variables, falling back to the usual ``AWS_*`` ones."""
        key: str | None
        if env.get("CHACHAML_S3_ACCESS_KEY_ID"):
            key, secret, token = (
                env["CHACHAML_S3_ACCESS_KEY_ID"],
                env.get("CHACHAML_S3_SECRET_ACCESS_KEY") or None,
                None,
            )
        else:
            key, secret, token = (
                env.get("AWS_ACCESS_KEY_ID") or None,
                env.get("AWS_SECRET_ACCESS_KEY") or None,
                env.get("AWS_SESSION_TOKEN") or None,
            )
        return cls(
            endpoint=_first(env, "CHACHAML_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            region=_first(env, "CHACHAML_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
            access_key_id=key,
            secret_access_key=secret,
            session_token=token,
            checksum=_flag(env, "CHACHAML_S3_CHECKSUM", True),
        )


def parse_tokens(raw: str) -> tuple[tuple[str, str, str], ...]:
    """``CHACHAML_TOKENS`` as ``(user, token, scope)`` entries.

    Comma-separated ``user:token`` (write scope) or ``user:token:scope`` (``read``, ``write``
    or ``admin``).
    """
    entries: list[tuple[str, str, str]] = []
    for item in raw.split(","):
        if not item.strip():
            continue
        user, sep, token = item.strip().partition(":")
        scope = "write"
        head, colon, tail = token.rpartition(":")
        if colon and tail in ("read", "write", "admin"):
            token, scope = head, tail
        if not sep or not user or len(token) < 8:
            raise ValueError(
                "CHACHAML_TOKENS must be comma-separated user:token[:scope] entries with tokens"
                f" of 8 or more characters, got an entry for {user or '?'!r}"
            )
        entries.append((user, token, scope))
    return tuple(entries)


@dataclass(frozen=True)
class Settings:
    """Everything the tracking client needs to know; immutable, built once."""

    store_url: str = DEFAULT_STORE
    artifact_root: str = DEFAULT_ARTIFACTS
    user: str = field(default_factory=os_user)
    heartbeat_seconds: float = 10.0
    flush_interval: float = 1.0
    flush_points: int = 50_000
    max_pending_points: int = 200_000
    base_url: str = DEFAULT_BASE_URL
    alert_timeout: float = 5.0
    alert_attempts: int = 3
    webhook_allow_private: bool = False
    s3: S3Settings = field(default_factory=S3Settings)
    token: str | None = field(default=None, repr=False)
    tokens: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    public_reads: bool = False
    allowed_hosts: tuple[str, ...] = ()
    max_upload_bytes: int = 1 << 30
    idempotency_lease: float = 60.0
    events_retention: float = 7 * 86400.0
    events_sweep: float = 5.0
    events_heartbeat: float = 15.0
    events: tuple[str, ...] = field(default=(), repr=False)  # broker URLs (may hold passwords)
    anthropic_api_key: str | None = field(default=None, repr=False)
    openai_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    openai_base_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CHACHAML_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        return cls(
            store_url=env.get("CHACHAML_STORE") or DEFAULT_STORE,
            artifact_root=env.get("CHACHAML_ARTIFACTS") or DEFAULT_ARTIFACTS,
            user=env.get("CHACHA_USER") or os_user(),
            heartbeat_seconds=_float(env, "CHACHAML_HEARTBEAT_SECONDS", 10.0),
            flush_interval=_float(env, "CHACHAML_FLUSH_SECONDS", 1.0),
            flush_points=_int(env, "CHACHAML_FLUSH_POINTS", 50_000),
            max_pending_points=_int(env, "CHACHAML_MAX_PENDING_POINTS", 200_000),
            base_url=(env.get("CHACHAML_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            alert_timeout=_float(env, "CHACHAML_ALERT_TIMEOUT_SECONDS", 5.0),
            alert_attempts=_int(env, "CHACHAML_ALERT_ATTEMPTS", 3),
            webhook_allow_private=_flag(env, "CHACHAML_WEBHOOK_ALLOW_PRIVATE", False),
            s3=S3Settings.from_env(env),
            token=env.get("CHACHAML_TOKEN") or None,
            tokens=parse_tokens(env.get("CHACHAML_TOKENS", "")),
            public_reads=_flag(env, "CHACHAML_PUBLIC_READS", False),
            allowed_hosts=tuple(
                h.strip() for h in env.get("CHACHAML_ALLOWED_HOSTS", "").split(",") if h.strip()
            ),
            max_upload_bytes=_int(env, "CHACHAML_MAX_UPLOAD_BYTES", 1 << 30),
            idempotency_lease=_float(env, "CHACHAML_IDEMPOTENCY_LEASE_SECONDS", 60.0),
            events_retention=_float(env, "CHACHAML_EVENTS_RETENTION_SECONDS", 7 * 86400.0),
            events_sweep=_float(env, "CHACHAML_EVENTS_SWEEP_SECONDS", 5.0),
            events_heartbeat=_float(env, "CHACHAML_EVENTS_HEARTBEAT_SECONDS", 15.0),
            events=tuple(u.strip() for u in env.get("CHACHAML_EVENTS", "").split(",") if u.strip()),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def redact_url(url: str) -> str:
    """A store URL fit to show: without its password (PostgreSQL URLs may carry one)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable chachaml reads: the README's table is made from these."""

    names: tuple[str, ...]
    default: str
    meaning: str


#: Every variable chachaml reads, in one place (``tests/test_environment.py`` keeps this, the
#: code and the README's table equal; ``python -m chachaml.settings`` prints the table).
ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(("CHACHAML_STORE",), "`sqlite:///./chachaml.db` (image: `sqlite:////data/chachaml.db`)",
           "store URL: `sqlite:///path`, `postgresql://...` or a server's `http(s)://` address"),
    EnvVar(("CHACHAML_ARTIFACTS",), "`./chachaml-artifacts/` (image: `/data/artifacts`)",
           "artifact root: a folder or `s3://bucket/prefix`"),
    EnvVar(("CHACHA_USER",), "the OS user", "who runs and registry changes are attributed to"),
    EnvVar(("CHACHAML_TOKEN",), "none",
           "the bearer token a client sends to a chachaml server (`CHACHAML_STORE=http(s)://...`,"
           " `chachaml mcp config --http`)"),
    EnvVar(("CHACHAML_HEARTBEAT_SECONDS",), "`10`",
           "run heartbeat; a run silent for 3 heartbeats + 2 s reads as `killed`"),
    EnvVar(("CHACHAML_FLUSH_SECONDS",), "`1`", "longest time a metric point waits in memory"),
    EnvVar(("CHACHAML_FLUSH_POINTS",), "`50000`", "a run's buffered points that trigger a flush"),
    EnvVar(("CHACHAML_MAX_PENDING_POINTS",), "`200000`",
           "queued points at which logging waits for the store (back-pressure)"),
    EnvVar(("CHACHAML_MCP_TOOLSETS",), "none",
           "opt-in MCP tool groups for `chachaml mcp`, `serve` and `chat`:"
           " `metrics,artifacts,registry,pipelines,alerts,experiments,watch,subscriptions`"
           " or `all`"),
    EnvVar(("CHACHAML_TOKENS",), "none; required by compose",
           "tokens for every surface of `chachaml serve`: comma-separated `user:token` (write"
           " scope) or `user:token:scope` (`read`, `write`, `admin`) entries, tokens of 8 or"
           " more characters; any token puts the server in team mode"),
    EnvVar(("CHACHAML_PUBLIC_READS",), "`false`",
           "team mode only: `true` lets anonymous callers read (pages, JSON, downloads, MCP"
           " read tools); writes and chat still need a token"),
    EnvVar(("CHACHAML_ALLOWED_HOSTS",), "none",
           "comma-separated Host names browsers may use for the server besides loopback names"
           " (e.g. `ml.example.com`); other Hosts get 403 (DNS rebinding)"),
    EnvVar(("CHACHAML_MAX_UPLOAD_BYTES",), "`1073741824`",
           "largest artifact upload the server accepts (413 beyond it)"),
    EnvVar(("CHACHAML_IDEMPOTENCY_LEASE_SECONDS",), "`60`",
           "how long an unfinished request's `Idempotency-Key` stays claimed; after a crash, a"
           " retry takes it over"),
    EnvVar(("CHACHAML_EVENTS_RETENTION_SECONDS",), "`604800` (7 days)",
           "how long `chachaml serve` keeps events in the outbox (older ones are pruned;"
           " `Last-Event-ID` resumes within it)"),
    EnvVar(("CHACHAML_EVENTS_SWEEP_SECONDS",), "`5`",
           "how often `chachaml serve` looks for runs whose heartbeat went stale, to send"
           " `run.killed` once"),
    EnvVar(("CHACHAML_EVENTS_HEARTBEAT_SECONDS",), "`15`",
           "how often `GET /api/events` sends a comment line, so quiet streams stay open"),
    EnvVar(("CHACHAML_EVENTS",), "none",
           "comma-separated message brokers `chachaml serve` (or `chachaml events publish`)"
           " publishes every event to: `nats://host:4222`, `redis://host:6379/0/chachaml`,"
           " `amqp://user:password@host:5672/` (see [Events](#events-every-change-as-it-happens))"),
    EnvVar(("CHACHAML_BASE_URL",), "`http://127.0.0.1:8080`",
           "the server's public URL, for links in alert webhooks"),
    EnvVar(("CHACHAML_ALERT_TIMEOUT_SECONDS",), "`5`", "time allowed for each alert webhook POST"),
    EnvVar(("CHACHAML_ALERT_ATTEMPTS",), "`3`", "attempts per alert webhook delivery"),
    EnvVar(("CHACHAML_WEBHOOK_ALLOW_PRIVATE",), "`false`",
           "let alert webhooks target loopback and private addresses"),
    EnvVar(("CHACHAML_S3_ENDPOINT",), "`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS",
           "S3 endpoint URL; `http://` is allowed (MinIO on a private network)"),
    EnvVar(("CHACHAML_S3_REGION",), "`AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`",
           "S3 region"),
    EnvVar(("CHACHAML_S3_ACCESS_KEY_ID", "CHACHAML_S3_SECRET_ACCESS_KEY"),
           "`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`)",
           "S3 keys; the `CHACHAML_` pair gives chachaml keys that other tools in the"
           " environment do not pick up"),
    EnvVar(("CHACHAML_S3_CHECKSUM",), "`true`",
           "have S3 verify each upload's SHA-256; `false` for services that reject checksum"
           " headers"),
    EnvVar(("ANTHROPIC_API_KEY", "OPENAI_API_KEY"), "none",
           "provider keys for `chachaml chat` and for the server's `/api/chat` when a request"
           " sends no `X-Chat-Api-Key`"),
    EnvVar(("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"), "the providers' APIs",
           "provider endpoints for chat (a gateway or proxy)"),
)  # fmt: skip


def environment_table() -> str:
    """The README's table of every environment variable, as Markdown."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for var in ENVIRONMENT:
        names = ", ".join(f"`{n}`" for n in var.names)
        rows.append(f"| {names} | {var.default} | {var.meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(environment_table())
