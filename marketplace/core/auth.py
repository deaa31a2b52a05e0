"""Typed access to the signed-in user: views behind ``login_required`` or ``IsAuthenticated`` call
``signed_in_user(request)`` instead of using ``request.user`` (typed ``User | AnonymousUser``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from marketplace.accounts.models import User


def signed_in_user(request: Any) -> User:
    """The request's user, refusing anonymous requests (a 403, or a 401 through DRF's handler)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return user
