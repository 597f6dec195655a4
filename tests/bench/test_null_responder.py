"""The responder that does no work: every request answered at once, on one connection."""

from __future__ import annotations

import httpx

from bench.mlflow_log_batch import connections_to
from bench.null_responder import null_responder


def test_every_request_is_answered_on_the_one_connection_kept_open() -> None:
    with null_responder() as served, httpx.Client(base_url=served.url, timeout=30) as http:
        for body in (b"", b"{}", b"x" * 300_000):  # the last spans many TCP segments
            answer = http.post("/api/2.0/mlflow/runs/log-batch", content=body)
            assert (answer.status_code, answer.content) == (200, b"{}")
        assert http.get("/health").content == b"{}"  # no body, no Content-Length
        assert len(connections_to(int(served.url.rsplit(":", 1)[1]))) == 1
