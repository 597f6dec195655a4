"""Tool arguments checked before the SDK sees them, so an agent reads what to fix.

The SDK reports a bad argument as pydantic's multi-line text ending in a documentation URL,
and ignores arguments a tool does not take, so a misspelt filter silently widens a query.
:class:`ArgumentCheck` (an SDK ``ServerMiddleware``) validates each ``tools/call`` against
the same argument model the SDK builds from the tool's signature and answers a problem as a
tool error of one sentence per argument: which argument, what was given, what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError
from pydantic_core import ErrorDetails


class ArgumentCheck:
    """Refuse a ``tools/call`` whose arguments the tool would not accept, saying why."""

    def __init__(self, tools: Mapping[str, FuncMetadata]) -> None:
        self._meta = dict(tools)  # each tool's argument model, as the SDK built it

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Answer a bad call here; pass every other message on."""
        params = ctx.params
        if ctx.method == "tools/call" and isinstance(params, Mapping):
            arguments = params.get("arguments") or {}
            problem = self.problem(str(params.get("name")), arguments)
            if problem is not None:
                return CallToolResult(
                    content=[TextContent(type="text", text=problem)], is_error=True
                )
        return await call_next(ctx)

    def problem(self, tool: str, arguments: object) -> str | None:
        """What is wrong with ``arguments`` for ``tool``, or ``None`` (unknown tools too)."""
        meta = self._meta.get(tool)
        if meta is None:
            return None  # the SDK answers an unknown tool itself
        if not isinstance(arguments, Mapping):
            return f"{tool}: arguments must be an object of named values."
        fields = meta.arg_model.model_fields
        accepted = [f.alias or name for name, f in fields.items()]
        unknown = [k for k in arguments if k not in accepted]
        if unknown:
            takes = ", ".join(accepted) or "no arguments"
            names = ", ".join(repr(k) for k in unknown)
            word = "argument" if len(unknown) == 1 else "arguments"
            return f"{tool}: unknown {word} {names}; it takes {takes}."
        try:
            meta.arg_model.model_validate(meta.pre_parse_json(dict(arguments)))
        except ValidationError as exc:
            return " ".join(_sentence(tool, e) for e in exc.errors(include_url=False))
        return None


def _sentence(tool: str, error: ErrorDetails) -> str:
    loc = error["loc"]
    name = str(loc[0]) if loc else "arguments"
    where = "".join(f"[{part}]" for part in loc[1:])
    message = error["msg"]
    message = message[0].lower() + message[1:] if message else "is not valid"
    if error["type"] == "missing":
        return f"{tool}: argument {name!r} is required."
    given = error.get("input")
    return f"{tool}: argument {name!r}{where} was {given!r}; {message}."
