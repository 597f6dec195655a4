"""A model's answer as HTML: markdown comes through, provider text never injects markup."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chachaml.server.api.chat_markdown import answer_html


def test_markdown_becomes_headings_emphasis_code_lists_links_and_tables() -> None:
    html = answer_html(
        "## Best runs\n\n**bold** and *em* and `code`\n\n- one\n- two\n\n"
        "[run](/runs/abc) [docs](https://example.com/x)\n\n"
        "| run | acc |\n|-----|----:|\n| a | 0.97 |\n\n```\nx = 1\n```"
    )
    for part in (
        "<h2>Best runs</h2>",
        "<strong>bold</strong>",
        "<em>em</em>",
        "<code>code</code>",
        "<li>one</li>",
        '<a href="/runs/abc" rel="noopener noreferrer nofollow">run</a>',
        '<a href="https://example.com/x"',
        "<table>",
        "<th>run</th>",
        "<td>0.97</td>",
        "<pre><code>x = 1\n</code></pre>",
    ):
        assert part in html


class Elements(HTMLParser):
    """Every element and attribute of an HTML fragment (escaped text is not an element)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        '<iframe src="https://evil.example"></iframe>',
        '<div style="position:fixed" onclick="x()">y</div>',
        "![img](https://evil.example/p.png)",
    ],
)
def test_scripts_raw_html_and_unsafe_links_come_out_inert(hostile: str) -> None:
    html = answer_html(f"before {hostile} after")
    elements = Elements(html).found
    assert {tag for tag, _ in elements} <= {"p", "a"}, html
    for _tag, attrs in elements:
        assert set(attrs) <= {"href", "rel"}, html
        href = (attrs.get("href") or "").lower()
        assert href == "" or href.startswith(("http://", "https://", "/")), html
    assert "before" in html and "after" in html
