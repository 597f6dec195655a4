"""Notes as HTML: markdown-it (raw HTML off) then the nh3 (ammonia) sanitizer.

``$...$`` and ``$$...$$`` become ``span.math``/``div.math`` holding the escaped TeX, which
the page's script typesets with the bundled KaTeX.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

_MD = MarkdownIt("commonmark", {"html": False}).use(dollarmath_plugin).enable("table")
_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "span": {"class"},
    "div": {"class"},
}


def note_html(text: str | None) -> str:
    """Sanitized HTML for a markdown note (empty for none)."""
    if not text:
        return ""
    return nh3.clean(
        _MD.render(text),
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
