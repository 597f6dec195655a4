"""Alert webhooks: the Slack-compatible body, its signature, and one guarded POST of it.

Sending happens in :mod:`chachaml.tools.deliveries` (a queue worker), never in the request
or run end that fired the alert. Each POST is bounded by a timeout and sent to an address
checked just before: targets on loopback, private, link-local, multicast or reserved ranges
are refused unless ``CHACHAML_WEBHOOK_ALLOW_PRIVATE=true`` (a webhook must not become a way
to reach the server's own network), and the connection goes to the very address that was
checked, so a name cannot resolve to something else between check and connect. Answers are
recorded as an HTTP status and an error kind, never their body.

When the rule (or subscription) has a secret, the request carries ``X-Chachaml-Timestamp``
(epoch seconds) and ``X-Chachaml-Signature: v1=<hex>``, the HMAC-SHA256 of
``v1:{timestamp}:{body}`` under the secret; a receiver recomputes it with :func:`signature`
and compares in constant time. A subscription's delivery is its event's CloudEvent and
names the event in ``X-Chachaml-Event-Id`` (the CloudEvent's ``id``), to de-duplicate by.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from chachaml.records.alerts import (
    Alert,
    AlertEvent,
    DeliveryAttempt,
    NewAlertEvent,
    PendingDelivery,
)
from chachaml.records.runs import to_datetime
from chachaml.settings import DEFAULT_BASE_URL, Settings

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Chachaml-Signature"
TIMESTAMP_HEADER = "X-Chachaml-Timestamp"
EVENT_HEADER = "X-Chachaml-Event-Id"
ALLOW_PRIVATE_ENV = "CHACHAML_WEBHOOK_ALLOW_PRIVATE"
RESOLVE_AT_SET_SECONDS = 2.0  # a rule is checked against DNS when set, if DNS answers by then
# error kinds recorded on attempts (besides "http <status>")
TIMEOUT = "timeout"
REFUSED_CONNECTION = "connection refused"
CONNECTION_ERROR = "connection error"
NETWORK_ERROR = "network error"
DNS_FAILURE = "dns failure"
PRIVATE_TARGET = "refused private address"
BAD_URL = "invalid url"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Delivery:
    """How events are delivered: where run pages live, the timeout and retry budget, targets.

    ``backoff`` is the pause before the second attempt; each later pause doubles.
    ``allow_private`` lets webhooks reach loopback and private addresses (a receiver on the
    same machine or network); refused by default.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Delivery:
        """Delivery as configured (``CHACHAML_BASE_URL``, ``CHACHAML_ALERT_*``, allow-private)."""
        return cls(
            base_url=settings.base_url,
            timeout=settings.alert_timeout,
            attempts=settings.alert_attempts,
            allow_private=settings.webhook_allow_private,
        )

    def retry_delay(self, attempt: int) -> float:
        """The pause after failed try number ``attempt`` (from 1): doubles each time."""
        return float(self.backoff * 2 ** (attempt - 1))


# targets


def private_address(ip: IPAddress) -> bool:
    """Whether an address is anything but a public unicast one (IPv4 inside IPv6 unwrapped)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return private_address(inner)
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses a name resolves to, in the resolver's order (``OSError`` if none)."""
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def refused_target(url: str) -> str | None:
    """Why a webhook URL points at a non-public address, or ``None`` if nothing shows it.

    IP literals and ``localhost`` names are judged as written; other names by what DNS says
    within a couple of seconds (a name that does not resolve yet is left to delivery, which
    checks again).
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback name"
    ip = _literal(host)
    if ip is not None:
        return f"{ip} is not a public address" if private_address(ip) else None
    with anyio.move_on_after(RESOLVE_AT_SET_SECONDS):
        try:
            for found in await _resolve(host, 443):
                if private_address(found):
                    return f"{host} resolves to {found}, not a public address"
        except OSError:
            return None
    return None


def run_url(base_url: str, run_id: str) -> str:
    """The UI page of a run."""
    return f"{base_url.rstrip('/')}/runs/{run_id}"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def condition(rule: Alert) -> str:
    """The rule's condition in words, e.g. ``accuracy < 0.8``."""
    if rule.kind == "threshold":
        return f"{rule.metric_key} {rule.op} {_number(rule.threshold)}"
    if rule.kind == "drop":
        against = (
            f"the production version of {rule.baseline_model}"
            if rule.baseline_model is not None
            else f"the mean of the last {rule.baseline_runs} completed runs"
        )
        return f"{rule.metric_key} drops more than {_number(rule.drop_pct)}% below {against}"
    window = rule.window_seconds or 0.0
    if rule.kind == "no_completed_run":
        return f"no completed run for {_number(window / 3600)} h"
    return f"a running run silent for {_number(window / 60)} min"


def payload(rule: Alert, event: AlertEvent | NewAlertEvent, base_url: str) -> dict[str, Any]:
    """The Slack-compatible body: ``text`` for notifications, ``blocks`` for the layout."""
    link = run_url(base_url, event.run_id) if event.run_id else None
    run_text = f"<{link}|{event.run_id}>" if link else "—"
    fields = [
        ("Rule", f"{rule.name} ({rule.kind})"),
        ("Run", run_text),
        ("Experiment", event.experiment or "—"),
        ("Value", _number(event.value)),
        ("Threshold", condition(rule)),
    ]
    if event.baseline is not None:
        fields.append(("Baseline", _number(event.baseline)))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"chachaml alert: {rule.name}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": event.message}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
        },
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open run"},
                        "url": link,
                    }
                ],
            }
        )
    text = f"chachaml alert {rule.name!r}: {event.message}" + (f" {link}" if link else "")
    return {"text": text, "blocks": blocks}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Chachaml-Signature`` value for a body sent at ``timestamp``."""
    digest = hmac.new(
        secret.encode(), b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return f"v1={digest}"


def retryable(attempt: DeliveryAttempt) -> bool:
    """Whether a failed try is worth repeating: no answer, or HTTP 429 or 5xx."""
    if attempt.error in (PRIVATE_TARGET, BAD_URL):
        return False
    code = attempt.status_code
    return code is None or code == 429 or code >= 500


def _refused_connection(exc: BaseException) -> bool:
    """Whether a connect error was, somewhere down its chain, a refused connection."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Refused(Exception):
    """The target cannot be sent to; ``args[0]`` is the error kind."""


async def _pinned(url: str, allow_private: bool) -> tuple[str, str, str | None]:
    """The URL with its host replaced by the checked address, the Host header, the SNI name."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise _Refused(BAD_URL)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _Refused(BAD_URL) from None
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await _resolve(host, port)
        except OSError:
            raise _Refused(DNS_FAILURE) from None
        if not addresses:
            raise _Refused(DNS_FAILURE)
    if not allow_private and any(private_address(ip) for ip in addresses):
        raise _Refused(PRIVATE_TARGET)
    ip = addresses[0]
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{shown}:{port}"
    if parts.username is not None:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        netloc = f"{userinfo}@{netloc}"
    header = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        header += f":{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    sni = host if parts.scheme == "https" and literal is None else None
    return pinned, header, sni


async def send(
    http: httpx.AsyncClient, item: PendingDelivery, delivery: Delivery
) -> DeliveryAttempt:
    """POST one queued delivery once; the attempt as recorded (status and error kind only).

    The target is resolved and checked now, then connected to by the checked address (the
    original name goes in ``Host`` and, for https, in SNI and certificate checks). The
    answer's body is never read.
    """
    import httpx

    body = json.dumps(item.payload).encode()
    started = time.time()
    code: int | None = None
    error: str | None = None
    try:
        target, host, sni = await _pinned(item.url, delivery.allow_private)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "chachaml-alerts" if item.subscription is None else "chachaml-events",
            "Host": host,
        }
        if item.event is not None:
            headers[EVENT_HEADER] = item.event
        if item.secret is not None:
            stamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = signature(item.secret, stamp, body)
        extensions: dict[str, Any] = {} if sni is None else {"sni_hostname": sni}
        with anyio.fail_after(delivery.timeout):
            async with http.stream(
                "POST", target, content=body, headers=headers, extensions=extensions
            ) as answer:
                code = answer.status_code
        if not 200 <= code < 300:
            error = f"http {code}"
    except _Refused as exc:
        error = str(exc.args[0])
    except (TimeoutError, httpx.TimeoutException):
        error = TIMEOUT
    except httpx.ConnectError as exc:
        error = REFUSED_CONNECTION if _refused_connection(exc) else CONNECTION_ERROR
    except httpx.HTTPError:
        error = NETWORK_ERROR
    return DeliveryAttempt(
        at=to_datetime(started),
        status_code=code,
        error=error,
        seconds=round(time.time() - started, 3),
    )
