"""Timestamps as the pages print them: one ``<time>`` element per instant, in UTC.

The server cannot know the viewer's zone, so it prints UTC (correct without JavaScript) and
marks the instant machine-readably; ``static/time.js`` rewrites each one to the viewer's
zone with a relative hint. The JSON twins keep their ISO strings untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup


def _instant(value: object) -> datetime | None:
    """The moment ``value`` names, if it is an ISO text or a datetime (naive ones too)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def when(value: object) -> Markup | str:
    """``<time datetime="ISO-UTC">YYYY-MM-DD HH:MM:SS UTC</time>`` for an aware instant.

    A naive time (its zone unknown, e.g. a cell of an uploaded CSV) is printed as written, to
    the second, and never converted; anything else is returned as text; ``None`` as nothing.
    """
    if value is None or value == "":
        return ""
    moment = _instant(value)
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        return moment.isoformat(sep=" ", timespec="seconds")
    utc = moment.astimezone(UTC)
    iso = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = utc.strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{}">{} UTC</time>').format(iso, text)
