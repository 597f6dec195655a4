"""One bounded wait for a condition, sync and async, instead of a hand-written loop per test.

Prefer an event when the code under test can signal one; these are for conditions that only an
outside look can see (a server answering, a row appearing, a subprocess's file).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import anyio

T = TypeVar("T")
INTERVAL = 0.02  # seconds between looks: short against every deadline used here


def wait_for(condition: Callable[[], T], timeout: float = 10.0, why: str = "") -> T:
    """Return ``condition()``'s first truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {why or condition}")
        time.sleep(INTERVAL)
    return found


async def await_for(
    condition: Callable[[], Awaitable[T]], timeout: float = 10.0, why: str = ""
) -> T:
    """Return ``await condition()``'s first truthy value; fail after ``timeout`` seconds."""
    try:
        with anyio.fail_after(timeout):
            while not (found := await condition()):
                await anyio.sleep(INTERVAL)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {why or condition}") from None
    return found


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The status a plain-HTTP GET of ``url`` gets; None when nothing answers.

    The probe polled while a server starts. ``httpx.get`` builds a client, and with it a TLS
    context, per call: ~28 ms of CPU, more than the interval between looks, so a poll of a
    starting server took a core from it. ``http.client`` takes ~0.05 ms.
    """
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname is not None, url
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
