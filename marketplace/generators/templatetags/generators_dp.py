"""Template tags of the tree engines' fit form: the measured quality cost of ε, and the largest ε."""

from __future__ import annotations

from typing import Any

from django import template

from marketplace.generators import native

register = template.Library()


@register.simple_tag
def dp_quality_cost() -> list[dict[str, Any]]:
    """Rows of the measured quality-versus-ε table (``native.QUALITY_COST``)."""
    return list(native.QUALITY_COST)


@register.simple_tag
def dp_max_epsilon() -> float:
    return native.max_epsilon()
