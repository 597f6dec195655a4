"""MCP over stdio that shakes hands at once, while the MCP SDK is still loading.

Importing the SDK takes most of a second; a client should not wait for it to answer
``initialize``. :class:`EarlyStdio` takes over the process's stdin and stdout *before* the
SDK is imported: a reader thread answers the handshake immediately with the server's
identity and capabilities (a test keeps them equal to what the SDK itself would send), and
queues every message, the ``initialize`` request included, for the SDK server, whose own
reply to that request is dropped. Only handshake-era protocol versions are answered early;
anything else is left to the SDK.

This module imports nothing heavy: keep it that way.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

NAME = "chachaml"
INSTRUCTIONS = """\
chachaml tracks machine-learning experiments: runs (params, metrics, tags, notes, datasets,
artifacts) grouped in experiments, and a registry of model versions with stages.
Start with list_experiments or list_runs; best_run answers "which run was best" in one call;
get_run shows one run in full; compare_runs explains differences. since/until take ISO dates.
Run ids in results are the ids to pass to other tools."""
CAPABILITIES: dict[str, Any] = {
    "prompts": {"listChanged": False},
    "resources": {"listChanged": False, "subscribe": True},
    "tools": {"listChanged": False},
}
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
_NOT_YET = object()


def instructions(store_url: str | None) -> str:
    """The server's instructions, naming the store it serves (a wrong URL shows at once)."""
    if store_url is None:
        return INSTRUCTIONS
    from chachaml.settings import redact_url

    return f"{INSTRUCTIONS}\nThis server reads and writes the store {redact_url(store_url)}."


def initialize_result(
    requested: object, version: str, store_url: str | None = None
) -> dict[str, Any]:
    """The ``initialize`` result for a requested protocol version (handshake era)."""
    negotiated = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1]
    return {
        "capabilities": CAPABILITIES,
        "instructions": instructions(store_url),
        "protocolVersion": negotiated,
        "serverInfo": {"name": NAME, "title": NAME, "version": version},
    }


def _early_initialize(line: bytes) -> tuple[Any, dict[str, Any]] | None:
    """``(id, params)`` when the line is a handshake-era ``initialize`` request."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    params = message.get("params")
    if "id" not in message or not isinstance(params, dict):
        return None
    if params.get("protocolVersion") not in HANDSHAKE_VERSIONS:
        return None
    return message["id"], params


class EarlyStdio:
    """The stdio wire, claimed at start-up, with an immediate answer to ``initialize``."""

    def __init__(self, version: str, store_url: str | None = None) -> None:
        self._version = version
        self._store_url = store_url
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._out_lock = threading.Lock()
        self._answered_id: Any = _NOT_YET
        self._wire_in: BinaryIO = os.fdopen(os.dup(0), "rb")
        self._wire_out: BinaryIO = os.fdopen(os.dup(1), "wb")
        # stray reads see EOF and stray prints go to stderr, never onto the wire
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        threading.Thread(target=self._read, name="chachaml-mcp-stdin", daemon=True).start()

    def _write(self, data: bytes) -> None:
        with self._out_lock:
            self._wire_out.write(data + b"\n")
            self._wire_out.flush()

    def _read(self) -> None:
        for line in iter(self._wire_in.readline, b""):
            if self._answered_id is _NOT_YET and (early := _early_initialize(line)):
                request_id, params = early
                result = initialize_result(
                    params.get("protocolVersion"), self._version, self._store_url
                )
                self._answered_id = request_id
                self._write(
                    json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode()
                )
            self._lines.put(line)
        self._lines.put(None)

    async def serve(self, server: MCPServer) -> None:
        """Hand the queued and future messages to ``server`` until the client hangs up."""
        import anyio
        import mcp_types
        from mcp.shared.message import SessionMessage

        lowlevel = server._lowlevel_server
        read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

        async def pump_in() -> None:
            async with read_send:
                while (line := await anyio.to_thread.run_sync(self._lines.get)) is not None:
                    try:
                        message = mcp_types.jsonrpc_message_adapter.validate_json(
                            line, by_name=False
                        )
                    except Exception as exc:  # the SDK answers malformed input itself
                        await read_send.send(exc)
                        continue
                    await read_send.send(SessionMessage(message))

        async def pump_out() -> None:
            async with write_recv:
                async for outgoing in write_recv:
                    message = outgoing.message
                    if (
                        isinstance(message, mcp_types.JSONRPCResponse | mcp_types.JSONRPCError)
                        and message.id == self._answered_id
                    ):
                        continue  # the handshake was answered already
                    self._write(message.model_dump_json(by_alias=True, exclude_unset=True).encode())

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump_in)
            tg.start_soon(pump_out)
            await lowlevel.run(read_recv, write_send, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()
