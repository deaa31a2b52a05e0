"""Identifiers of the rows this app creates (orders, refunds): a prefix and 24 random hex digits."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A fresh identifier such as ``ord_…`` or ``rfd_…`` (96 random bits)."""
    return f"{prefix}_{secrets.token_hex(12)}"
