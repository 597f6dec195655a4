"""Live pages: where a page's event stream starts, so it misses nothing after the page.

The run, runs, pipeline and pipelines pages update from ``GET /api/events`` (``static/live.js``
opens one ``EventSource`` per tab). A page carries the newest event id of the store as it was
built (``events_after``); the browser asks for the events after it, so a change committed
between building the page and opening the stream still arrives. An empty value (a server
without an event feed) tells the page to poll its JSON twin instead.
"""

from __future__ import annotations

from starlette.requests import Request

from chachaml.tools.events import EventFeed


async def events_after(request: Request) -> str:
    """The newest event id when the page was built, as text (``""``: no stream to follow)."""
    feed = getattr(request.app.state, "events", None)
    if not isinstance(feed, EventFeed):
        return ""
    return str(await feed.head())
