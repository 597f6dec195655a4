"""The one TLS context a process's outgoing HTTPS clients share.

Webhook deliveries, the remote store's connection and the LLM providers' SDK clients each
verify servers with the same CA bundle. Building a context loads that bundle, about 25 ms of
CPU, and httpx and the SDKs build one for every client they make: once per chat question, per
server app started, per remote store opened. One context, built on first use and then shared
(an ``ssl.SSLContext`` is safe to share between clients, threads and event loops), costs it
once. It is httpx's own default, so ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` still apply.
"""

from __future__ import annotations

import ssl
from functools import cache


@cache
def client_context() -> ssl.SSLContext:
    """The process's TLS context for verifying the servers it calls."""
    import httpx  # only processes that make an HTTPS client pay for importing httpx

    return httpx.create_ssl_context()
