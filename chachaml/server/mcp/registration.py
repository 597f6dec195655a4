"""Tool registrations built once per process, then bound to each server's functions.

The SDK builds a tool's argument model and JSON schemas from its signature with pydantic,
about 5 ms a tool; every app (``create_app``, the chat routes, a chat session) builds a
server, and each binds the same tool functions to another store. A tool's schema depends
only on its code and defaults, so the first build is kept per tool and later servers get a
copy holding their own function: ``create_app`` went from ~110 ms to ~10 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import CodeType
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

_Key = tuple[CodeType, str, str | None, str]
_built: dict[_Key, tuple[object, Tool]] = {}
_lock = threading.Lock()


def _signature_of(fn: Callable[..., Any]) -> tuple[CodeType, object]:
    """The code object and defaults that decide a function's schema (through wrappers)."""
    inner = getattr(fn, "__wrapped__", fn)
    return inner.__code__, (inner.__defaults__, inner.__kwdefaults__, inner.__annotations__)


def bound_tool(
    fn: Callable[..., Any],
    *,
    title: str | None,
    description: str,
    annotations: ToolAnnotations,
) -> Tool:
    """``Tool.from_function(fn, ...)``, computed once per tool code, bound to ``fn``."""
    code, shape = _signature_of(fn)
    key = (code, fn.__name__, title, description)
    with _lock:
        found = _built.get(key)
    if found is None or found[0] != shape:
        tool = Tool.from_function(fn, title=title, description=description,
                                  annotations=annotations)  # fmt: skip
        with _lock:
            _built[key] = (shape, tool)
        return tool
    return found[1].model_copy(update={"fn": fn, "annotations": annotations})
