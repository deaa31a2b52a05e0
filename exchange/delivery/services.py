"""Granting and revoking entitlements; each change is also a ledger event in the same transaction."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange.delivery.models import Entitlement
from exchange.ledger.services import record_event
from marketplace.accounts.models import User
from marketplace.catalog.models import ProductVersion


def grant_entitlement(*, buyer: User, version: ProductVersion, license_code: str, source: str) -> Entitlement:
    """Grant ``buyer`` the right to ``version`` under ``license_code``; idempotent per ``source``.

    Calling again with the same ``source`` returns the entitlement granted the first time (revoked or not)
    and records nothing. The ``entitlement.granted`` ledger event commits with the row.
    """
    existing = Entitlement.objects.filter(source=source).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            entitlement = Entitlement.objects.create(
                id=f"ent_{secrets.token_hex(12)}",
                buyer=buyer,
                version=version,
                license_code=license_code,
                source=source,
                granted_at=timezone.now(),
            )
            record_event(
                idempotency_key=f"entitlement.granted:{source}",
                kind="entitlement.granted",
                refs={"entitlement": entitlement.id, "source": source, "version": str(version.pk)},
            )
    except IntegrityError:
        return Entitlement.objects.get(source=source)
    return entitlement


def revoke_entitlement(
    entitlement: Entitlement, *, reason: str, idempotency_key: str | None = None
) -> Entitlement:
    """Revoke an active entitlement (a no-op on a revoked one); records ``entitlement.revoked`` once.

    ``idempotency_key`` defaults to ``entitlement.revoked:<source>``; a revocation that may be undone (a
    refund sent to Stripe, see :func:`reinstate_entitlement`) passes its own so a later one is logged too.
    """
    with transaction.atomic():
        changed = Entitlement.objects.filter(pk=entitlement.pk, status=Entitlement.Status.ACTIVE).update(
            status=Entitlement.Status.REVOKED, revoked_at=timezone.now(), revoke_reason=reason[:200]
        )
        if changed:
            record_event(
                idempotency_key=idempotency_key or f"entitlement.revoked:{entitlement.source}",
                kind="entitlement.revoked",
                refs={"entitlement": entitlement.id, "source": entitlement.source},
            )
    entitlement.refresh_from_db()
    return entitlement


def reinstate_entitlement(entitlement: Entitlement, *, idempotency_key: str) -> Entitlement:
    """Make a revoked entitlement active again (a no-op on an active one); records ``entitlement.reinstated``.

    Used only when the refund whose request revoked it was refused by Stripe: the buyer keeps what they paid
    for. ``idempotency_key`` names that refund, so the event is written once.
    """
    with transaction.atomic():
        changed = Entitlement.objects.filter(pk=entitlement.pk, status=Entitlement.Status.REVOKED).update(
            status=Entitlement.Status.ACTIVE, revoked_at=None, revoke_reason=""
        )
        if changed:
            record_event(
                idempotency_key=idempotency_key,
                kind="entitlement.reinstated",
                refs={"entitlement": entitlement.id, "source": entitlement.source},
            )
    entitlement.refresh_from_db()
    return entitlement
