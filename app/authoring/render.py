"""LLM output is data, never markup: Markdown -> HTML -> an allowlist sanitizer.

markdown-it runs with raw HTML disabled (any HTML in the text is escaped), and nh3 then keeps only an
allowlist of tags and attributes: no scripts, event handlers, hx-*/data-* attributes, styles, forms or
iframes, and links only to http(s)/mailto. Templates use the `md` filter; nothing from a model is ever
compiled as a Jinja template or marked safe any other way.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@functools.lru_cache(maxsize=16384)
def _render(text: str) -> str:
    # Headings from a model are demoted below the page's own h1/h2.
    html = _markdown.render(text).replace("<h1>", "<h3>").replace("</h1>", "</h3>")
    html = html.replace("<h2>", "<h4>").replace("</h2>", "</h4>")
    return sanitize_html(html)


def markdown_to_html(text: str | None) -> Markup:
    """Pure in its input, so memoized: published text is re-rendered on every page view otherwise."""
    if not text:
        return Markup("")
    return Markup(_render(text))
