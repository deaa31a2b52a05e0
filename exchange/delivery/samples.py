"""Rows on demand from generator products: ``POST /api/v1/entitlements/{id}/samples/`` and the quota.

A buyer's entitlement to a generator version carries a row quota (per license, set by the provider). A
request is checked (rows, quota left, seed, conditions) under a lock on the entitlement, then queued as a
draw on the ``sample`` queue (``marketplace.generators``). Quota is consumed only when the draw succeeds:
``consume_quota`` runs inside the transaction that marks the draw succeeded and records ``quota.consumed``
on the ledger with the draw, its row count, the SHA-256 of the draw's seed and of its file, so leaked rows
can be matched to a draw; a failed draw records nothing and its rows are free again.

The API (``exchange.delivery.api``: ``EntitlementSamples``, ``SampleDetail``) and the draw page call these
services. A succeeded draw is delivered like a catalog file (``exchange.downloads``): ``?download=1`` on the draw, or
``POST /api/v1/entitlements/{id}/links/`` with ``draw``, gives the buyer's fingerprinted copy with a signed
receipt; the raw draw file is never served.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from exchange.delivery.models import Entitlement
from exchange.ledger.services import record_event
from marketplace.catalog.models import ProductKind
from marketplace.core.errors import JsonableError
from marketplace.generators import relational as relational_generators
from marketplace.generators import selectors as generator_selectors
from marketplace.generators.models import GeneratorModel, SampleDraw
from marketplace.generators.services import draws

COMMIT_HOOK = "exchange.delivery.samples.consume_quota"


def consume_quota(draw: SampleDraw) -> None:
    """Record the succeeded ``draw`` on the ledger (called inside the draw's success transaction)."""
    record_event(
        idempotency_key=f"quota.consumed:{draw.id}",
        kind="quota.consumed",
        refs={
            "entitlement": draw.entitlement_id,
            "draw": draw.id,
            "rows": str(draw.rows),
            "seed_sha256": draw.seed_sha256,
            "sha256": draw.sha256,
        },
    )


def quota_state(entitlement: Entitlement) -> dict[str, int]:
    generator = GeneratorModel.objects.get(version_id=entitlement.version_id)
    quota = generator_selectors.quota_for(generator, entitlement.license_code)
    used = generator_selectors.reserved_rows(entitlement.id)
    return {"quota_rows": quota, "reserved_rows": used, "rows_left": max(quota - used, 0)}


def request_sample(
    entitlement_id: str, *, buyer: Any, rows: Any, seed: Any = None, conditions: Any = None
) -> SampleDraw:
    """Check and queue a draw under the buyer's active entitlement; nothing is consumed until it succeeds.
    A refusal raises ``JsonableError`` (the API answers it as it is; the draw page shows its message)."""
    with transaction.atomic():
        entitlement = (
            Entitlement.objects.select_for_update()
            .select_related("version__product")
            .filter(pk=entitlement_id, buyer=buyer)
            .first()
        )
        if entitlement is None:
            raise JsonableError("not_found", "No such entitlement.", 404)
        if not entitlement.is_active:
            raise JsonableError("entitlement_revoked", "This entitlement was revoked.", 403)
        generator = GeneratorModel.objects.filter(version_id=entitlement.version_id).first()
        if entitlement.version.product.kind != ProductKind.GENERATOR or generator is None:
            raise JsonableError("not_a_generator", "This entitlement is to a dataset, not a generator.", 400)
        if relational_generators.is_hma(generator):
            relational_generators.check_entity_request(generator, rows, conditions)
        return draws.sample_rows(
            generator,
            entitlement_id=entitlement.id,
            buyer=buyer,
            quota_rows=generator_selectors.quota_for(generator, entitlement.license_code),
            rows=rows,
            seed=seed,
            conditions=conditions,
            commit_hook=COMMIT_HOOK,
        )
