"""Provider descriptions: Markdown rendered to HTML, then sanitized with nh3 (Ammonia)."""

from __future__ import annotations

import markdown as md
import nh3

_ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "sup",
    "sub",
    "del",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> str:
    """Render untrusted Markdown to HTML that is safe to insert in a page.

    Raw HTML in the source is escaped by the sanitizer's allow-list: no script, iframe, style, event
    handlers, or ``javascript:``/``data:`` links survive; links get ``rel="noopener noreferrer nofollow"``.
    """
    html = md.markdown(text or "", extensions=["tables", "fenced_code", "sane_lists"], output_format="html")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
