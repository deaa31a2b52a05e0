"""Template helpers: money in minor units, and small server-side SVG charts (no JS, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_EXPONENT = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
_REAL = "#64748b"
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
def histogram_svg(column: dict[str, Any], width: int = 160, height: int = 40) -> SafeString:
    """A sparkline of a column profile: numeric histogram bars, or top-category bars."""
    if column.get("histogram"):
        counts = [int(c) for _, _, c in column["histogram"]]
        title = f"{column['name']}: {column['histogram'][0][0]:g} to {column['histogram'][-1][1]:g}"
    elif column.get("top_values"):
        counts = [int(c) for _, c in column["top_values"]]
        title = f"{column['name']}: top values " + ", ".join(str(v) for v, _ in column["top_values"][:5])
    else:
        return mark_safe("")
    return _bars([counts], [_SYNTHETIC], width, height, title)


def _bars(
    series: Sequence[Sequence[float]], colors: Sequence[str], width: int, height: int, title: str
) -> SafeString:
    peak = max((max(s) for s in series if s), default=0) or 1
    n = max(len(s) for s in series)
    group = width / max(n, 1)
    bar = group / (len(series) + 0.5)
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for k, values in enumerate(series):
        for i, value in enumerate(values):
            h = max(1.0, (value / peak) * (height - 2)) if value else 0
            x = i * group + k * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" fill="{colors[k]}"/>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


@register.simple_tag
def compare_svg(
    real: Sequence[float], synthetic: Sequence[float], title: str = "", width: int = 260, height: int = 70
) -> SafeString:
    """Real (grey) vs synthetic (blue) frequencies, side by side per bin or category."""
    return _bars([list(real), list(synthetic)], [_REAL, _SYNTHETIC], width, height, title)


@register.simple_tag
def heatmap_svg(
    matrix: Sequence[Sequence[float | None]], labels: Sequence[str], title: str = "", cell: int = 18
) -> SafeString:
    """A correlation matrix as a red–white–blue heat map (−1 … +1); labels show on hover."""
    n = len(matrix)
    size = n * cell
    parts = [
        f'<svg class="chart heatmap" role="img" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value is None:
                color = "#e5e7eb"
            else:
                v = max(-1.0, min(1.0, float(value)))
                level = int(255 * (1 - abs(v)))
                color = f"rgb({level},{level},255)" if v >= 0 else f"rgb(255,{level},{level})"
            label = (
                f"{labels[i]} × {labels[j]}: {value:.2f}"
                if value is not None
                else f"{labels[i]} × {labels[j]}"
            )
            parts.append(
                f'<rect x="{j * cell}" y="{i * cell}" width="{cell}" height="{cell}" fill="{color}">'
                f"<title>{escape(label)}</title></rect>"
            )
    parts.append("</svg>")
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
