"""Finding 2 as a browser does it: a page of another loopback origin attacks a local server.

A real ``chachaml serve`` on 127.0.0.1 (local mode: no tokens) and, on another port, an
attacker's page that fires what a cross-site page can send without a CORS preflight: a
``no-cors`` fetch with a ``text/plain`` JSON body, and an auto-submitted ``text/plain`` form.
Chromium (Debian's, driven by Playwright) loads the page; afterwards the store must be as it
was: nothing archived, deleted or planted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.browser import chromium
from tests.support.mcp_seed import free_port, seeded_store, serving
from tests.support.webhook_receiver import POLL

ATTACK = """<!doctype html><html><body>
<form id="plant" method="post" enctype="text/plain" action="{target}/api/w/runs">
  <input name='{{"experiment": "planted", "x": "' value='"}}'>
</form>
<iframe name="sink" id="sink"></iframe>
<script>
const target = "{target}";
const shots = [
  ["/api/w/archive", {{"older_than_days": 0}}],
  ["/api/w/archived/delete", {{}}],
  ["/api/w/experiments", {{"name": "planted-too"}}],
  ["/runs/{run}/note", {{"note": "pwned"}}],
  ["/api/chat", {{"question": "spend the server's key"}}],
];
Promise.allSettled(shots.map(([path, body]) => fetch(target + path, {{
  method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify(body), credentials: "include",
}}))).then(() => {{
  const form = document.getElementById("plant");
  form.target = "sink";
  document.getElementById("sink").onload = () => {{ window.attackDone = true; }};
  form.submit();
}});
</script></body></html>"""


def _state(db: Path) -> tuple[Any, ...]:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("SELECT count(*), sum(archived) FROM runs").fetchone(),
            conn.execute("SELECT name FROM experiments ORDER BY name").fetchall(),
            conn.execute("SELECT id, note FROM runs ORDER BY id").fetchall(),
        )


@pytest.fixture
def attacker(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(victim base URL, attacker page URL, victim database)."""
    url = anyio.run(seeded_store, tmp_path)
    with serving(url, tmp_path / "artifacts") as mcp_url:
        victim = mcp_url.removesuffix("/mcp")
        page = ATTACK.format(target=victim, run="b" * 32).encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        port = free_port()
        server = ThreadingHTTPServer(("127.0.0.1", port), Page)
        thread = threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True)
        thread.start()
        try:
            # another origin on loopback: another host name and port than the victim's
            yield victim, f"http://localhost:{port}/", tmp_path / "seeded.db"
        finally:
            server.shutdown()
            server.server_close()


def test_a_page_of_another_origin_cannot_write_to_a_local_server(
    attacker: tuple[str, str, Path],
) -> None:
    _, page_url, db = attacker
    before = _state(db)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(page_url)
        page.wait_for_function("window.attackDone === true", timeout=15_000)
    assert _state(db) == before
