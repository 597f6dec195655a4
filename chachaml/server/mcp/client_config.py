"""``chachaml mcp config``: a ready-to-paste MCP client configuration.

MCP clients (Claude Desktop, Cursor, the Inspector) start the server with a bare command name
and no shell, so a ``chachaml`` installed in a virtualenv is not found (``spawn chachaml
ENOENT``), and a relative store path resolves against the client's own folder. The
configurations printed here therefore name the absolute path of the running executable and
the absolute store and artifact locations, for stdio; for a server over HTTP they name its
``/mcp`` address and, when the server asks for one, the token header.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from chachaml.errors import InvalidInput

Client = Literal["claude-desktop", "claude-code", "continue", "cursor", "vscode"]
CLIENTS: tuple[Client, ...] = ("claude-desktop", "claude-code", "continue", "cursor", "vscode")
NAME = "chachaml"
TOKEN_PLACEHOLDER = "<token from: chachaml token create --user NAME --store URL>"


def executable() -> str:
    """The absolute path of the ``chachaml`` command this Python runs.

    The console script sits beside the interpreter in a virtualenv's ``bin``; when run some
    other way (``python -m``), the script that was started is the answer.
    """
    beside = Path(sys.executable).parent / NAME
    if beside.exists():
        return str(beside)
    return str(Path(sys.argv[0]).absolute())


def absolute_store(url: str) -> str:
    """``url`` with a relative SQLite path made absolute (other URLs as they are)."""
    from chachaml.store import sqlite_path

    path = sqlite_path(url)
    return url if path is None else f"sqlite:///{path}"


def mcp_url(base: str) -> str:
    """A server's MCP endpoint: ``http://host:port`` becomes ``http://host:port/mcp``."""
    if not base.startswith(("http://", "https://")):
        raise InvalidInput(f"--http takes the server's http(s):// address, not {base!r}")
    base = base.rstrip("/")
    return base if base.endswith("/mcp") else f"{base}/mcp"


def stdio_config(client: Client, command: str, args: Sequence[str]) -> str:
    """The configuration that starts ``command args`` as a stdio server in ``client``."""
    if client == "claude-code":
        return shlex.join(["claude", "mcp", "add", NAME, "--", command, *args])
    if client == "continue":
        return _continue_yaml({"name": NAME, "type": "stdio", "command": command, "args": args})
    entry: dict[str, Any] = {"command": command, "args": list(args)}
    if client == "vscode":
        return _json({"servers": {NAME: {"type": "stdio", **entry}}})
    return _json({"mcpServers": {NAME: entry}})  # claude-desktop, cursor


def http_config(client: Client, url: str, token: str | None) -> str:
    """The configuration that reaches the MCP endpoint ``url`` (with a bearer token)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if client == "claude-code":
        header = [f"--header=Authorization: Bearer {token}"] if token else []
        return shlex.join(["claude", "mcp", "add", "--transport", "http", NAME, url, *header])
    if client == "continue":
        entry: dict[str, Any] = {"name": NAME, "type": "streamable-http", "url": url}
        if headers:
            entry["requestOptions"] = {"headers": headers}
        return _continue_yaml(entry)
    if client == "claude-desktop":
        # Claude Desktop's config file starts local processes only: mcp-remote bridges to HTTP
        args = ["-y", "mcp-remote", url]
        if token:
            args += ["--header", f"Authorization: Bearer {token}"]
        return _json({"mcpServers": {NAME: {"command": "npx", "args": args}}})
    remote: dict[str, Any] = {"url": url, **({"headers": headers} if headers else {})}
    if client == "vscode":
        return _json({"servers": {NAME: {"type": "http", **remote}}})
    return _json({"mcpServers": {NAME: remote}})  # cursor


def where(client: Client) -> str:
    """Where the printed configuration goes, in one line."""
    return {
        "claude-desktop": "add to claude_desktop_config.json (Settings > Developer > Edit Config)",
        "claude-code": "run this command",
        "continue": "add to ~/.continue/config.yaml",
        "cursor": "add to ~/.cursor/mcp.json (or .cursor/mcp.json in a project)",
        "vscode": "add to .vscode/mcp.json",
    }[client]


def needs_token(url: str) -> bool:
    """Whether the server at ``url`` refuses MCP without a token (team mode)."""
    import httpx

    hello = {"jsonrpc": "2.0", "id": 0, "method": "ping"}
    try:
        reply = httpx.post(
            url,
            json=hello,
            headers={"Accept": "application/json, text/event-stream"},
            timeout=5,
        )
    except httpx.HTTPError as exc:
        raise InvalidInput(f"no chachaml server answers at {url} ({exc})") from None
    return reply.status_code == 401


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2)


def _continue_yaml(entry: dict[str, Any]) -> str:
    # JSON scalars are valid YAML, so the values need no YAML library to be quoted right
    lines = ["mcpServers:"]
    first = True
    for key, value in entry.items():
        lead = "  - " if first else "    "
        first = False
        if isinstance(value, dict):
            lines.append(f"{lead}{key}:")
            for sub, inner in value.items():
                lines.append(f"      {sub}:")
                lines += [f"        {k}: {json.dumps(v)}" for k, v in inner.items()]
        else:
            lines.append(f"{lead}{key}: {json.dumps(value)}")
    return "\n".join(lines)
