"""Tool answers kept for as long as the store says nothing was written since.

An agent asks ``list_runs`` and ``best_run`` again and again while a store sits still, and
each answer costs a query, pydantic models and a text table: several times the MCP SDK's own
cost of a call. An answer is kept beside the store's change marker read *before* it was
computed (:meth:`~chachaml.store.protocol.Store.change_marker`), and given again only while
the marker reads the same: a write committed since by any process or replica, to any run,
metric, tag or experiment, changes it, and the next call computes afresh. A store that cannot
tell (``None``: over HTTP, in memory) is never cached from.

Time changes answers too: a ``running`` run whose heartbeat stops reads as ``killed`` with no
write at all. The tools therefore keep no answer that shows a running run or filters on
``running``/``killed``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from mcp_types import CallToolResult

from chachaml.store.protocol import Store

SIZE = 32  # answers kept per server (argument combinations), least recently used dropped

Computed = tuple[CallToolResult, bool]  # the answer, and whether it may be kept


class AnswerCache:
    """The last answers of read-only tools over one store, each under its change marker."""

    def __init__(self, store: Store, size: int = SIZE) -> None:
        self._store = store
        self._size = size
        self._kept: OrderedDict[Hashable, tuple[str, CallToolResult]] = OrderedDict()

    async def answer(
        self, key: Hashable, compute: Callable[[], Awaitable[Computed]]
    ) -> CallToolResult:
        """The kept answer for ``key`` if nothing was written since, else ``compute()``'s.

        ``key`` names the tool and every argument. The marker is read first, so a write
        committed while the answer is computed is seen by the next call.
        """
        marker = await self._store.change_marker()
        if marker is not None:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == marker:
                self._kept.move_to_end(key)
                return kept[1]
        result, keep = await compute()
        self._kept.pop(key, None)
        if marker is not None and keep:
            self._kept[key] = (marker, result)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return result
