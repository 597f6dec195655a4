"""A chat answer as safe HTML: markdown-it with raw HTML off, then the nh3 (ammonia) sanitizer.

The model's text is provider output, so it is treated as hostile: raw HTML in it is escaped
by markdown-it and whatever markup survives is cleaned by nh3 (no scripts, no event
handlers, no ``style``), and links keep only http(s) and relative targets. Headings,
emphasis, code, lists, links and pipe tables come through.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s"),
    *("code", "pre", "blockquote", "ul", "ol", "li", "a"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


def answer_html(text: str) -> str:
    """Sanitized HTML for a model's markdown answer."""
    return nh3.clean(
        _MD.render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
    )
