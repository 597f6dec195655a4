"""``chachaml mcp``'s early ``initialize`` answer covers the SDK's versions (e2e: the wire)."""

from __future__ import annotations

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from chachaml.server.mcp import stdio as mcp_stdio


def test_early_answers_cover_exactly_the_sdks_handshake_versions() -> None:
    assert mcp_stdio.HANDSHAKE_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    assert mcp_stdio.initialize_result("1999-01-01", "")["protocolVersion"] == "2025-11-25"
