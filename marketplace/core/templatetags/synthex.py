"""Template helpers: money in minor units, and column sparklines as small server-side SVG (no JS, no CDN)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_EXPONENT = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
_SYNTHETIC = "#2563eb"


@register.filter
def money(amount_minor: int | None, currency: str = "USD") -> str:
    """Format integer minor units for display: ``money(1999, "USD")`` → ``"19.99 USD"``."""
    if amount_minor is None:
        return "—"
    exponent = _EXPONENT.get(currency, 2)
    whole, fraction = divmod(abs(int(amount_minor)), 10**exponent)
    sign = "-" if amount_minor < 0 else ""
    text = f"{sign}{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    return f"{text} {currency}"


@register.filter
def price(amount_minor: int | None, currency: str = "USD") -> str:
    """A price for buyers: like ``money`` but a zero price reads "Free"."""
    return "Free" if amount_minor == 0 else money(amount_minor, currency)


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


@register.filter
def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


@register.filter
def get(mapping: Any, key: str) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.simple_tag
def histogram_svg(column: dict[str, Any], width: int = 120, height: int = 32) -> SafeString:
    """A sparkline of a column profile (numeric histogram bars, or top-category bars) on a baseline.

    A sparkline on purpose: it sits in a table row whose Min/Max cells are its axis, and its tooltip names
    the range or the top values. The certificate's real charts, with axes and legends, are drawn by
    matplotlib in the worker (``marketplace.certification.chart_svg``). CSS scales it to its cell."""
    if column.get("histogram"):
        counts = [int(c) for _, _, c in column["histogram"]]
        title = f"{column['name']}: {column['histogram'][0][0]:g} to {column['histogram'][-1][1]:g}"
    elif column.get("top_values"):
        counts = [int(c) for _, c in column["top_values"]]
        title = f"{column['name']}: top values " + ", ".join(str(v) for v, _ in column["top_values"][:5])
    else:
        return mark_safe("")
    peak = max(counts, default=0) or 1
    step = width / max(len(counts), 1)
    parts = [
        f'<svg class="chart sparkline" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    ]
    for index, count in enumerate(counts):
        bar = max(1.0, count / peak * (height - 2)) if count else 0.0
        parts.append(
            f'<rect x="{index * step + 0.5:.1f}" y="{height - 1 - bar:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{bar:.1f}" fill="{_SYNTHETIC}"/>'
        )
    parts.append(
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#94a3b8"/></svg>'
    )
    return mark_safe("".join(parts))


@register.simple_tag
def query_replace(querystring: str, key: str, value: Any) -> str:
    """Rebuild a query string with ``key`` set to ``value`` (empty removes it) — for facet links."""
    from django.http import QueryDict

    params = QueryDict(querystring, mutable=True)
    if key != "page":
        params.pop("page", None)
    if value in ("", None):
        params.pop(key, None)
    else:
        params[key] = str(value)
    return params.urlencode()
