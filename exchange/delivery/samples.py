"""Rows on demand from generator products: ``POST /api/v1/entitlements/{id}/samples/`` and the quota.

A buyer's entitlement to a generator version carries a row quota (per license, set by the provider). A
request is checked (rows, quota left, seed, conditions) under a lock on the entitlement, then queued as a
draw on the ``sample`` queue (``marketplace.generators``). Quota is consumed only when the draw succeeds:
``consume_quota`` runs inside the transaction that marks the draw succeeded and records ``quota.consumed``
on the ledger with the draw, its row count, the SHA-256 of the draw's seed and of its file, so leaked rows
can be matched to a draw; a failed draw records nothing and its rows are free again.

A succeeded draw is delivered like a catalog file (``exchange.downloads``): ``?download=1`` on the draw, or
``POST /api/v1/entitlements/{id}/links/`` with ``draw``, gives the buyer's fingerprinted copy with a signed
receipt; the raw draw file is never served.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from exchange.delivery.models import Entitlement
from exchange.downloads import api as downloads_api
from exchange.downloads import services as downloads
from exchange.downloads.constants import FORMATS
from exchange.ledger.services import record_event
from marketplace.catalog.models import ProductKind
from marketplace.core.auth import signed_in_user
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
            raise JsonableError("not_found", "No such entitlement.", status.HTTP_404_NOT_FOUND)
        if not entitlement.is_active:
            raise JsonableError(
                "entitlement_revoked", "This entitlement was revoked.", status.HTTP_403_FORBIDDEN
            )
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


class SampleInput(serializers.Serializer):
    rows = serializers.JSONField()
    seed = serializers.JSONField(required=False, allow_null=True)
    conditions = serializers.JSONField(required=False, allow_null=True)


class DrawOutput(serializers.ModelSerializer):
    seed_sha256 = serializers.CharField()

    class Meta:
        model = SampleDraw
        fields = [
            "id",
            "entitlement_id",
            "rows",
            "seed_sha256",
            "conditions",
            "status",
            "progress",
            "error",
            "error_code",
            "sha256",
            "size_bytes",
            "created_at",
            "finished_at",
        ]


class EntitlementSamples(APIView):
    """`POST` rows (1 to 5,000,000, within the quota left), optional `seed` and `conditions` (column →
    value): queues a draw (202). `GET`: the entitlement's draws and its quota."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=SampleInput, responses={202: DrawOutput})
    def post(self, request: Request, entitlement_id: str) -> Response:
        data = SampleInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        draw = request_sample(
            entitlement_id,
            buyer=signed_in_user(request),
            rows=values["rows"],
            seed=values.get("seed"),
            conditions=values.get("conditions"),
        )
        draw.refresh_from_db()
        return Response(DrawOutput(draw).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DrawOutput(many=True))
    def get(self, request: Request, entitlement_id: str) -> Response:
        entitlement = get_object_or_404(Entitlement, pk=entitlement_id, buyer=signed_in_user(request))
        draws = SampleDraw.objects.filter(entitlement_id=entitlement.id)
        quota = (
            quota_state(entitlement)
            if GeneratorModel.objects.filter(version_id=entitlement.version_id).exists()
            else {}
        )
        return Response({**quota, "draws": DrawOutput(draws, many=True).data})


class SampleDetail(downloads_api.ThrottledDownloads):
    """`GET` one draw; `?download=1` (optional `as`: parquet, the default, csv or jsonl) serves the buyer's
    fingerprinted copy of a succeeded draw, as the signed download links do (owner only)."""

    permission_classes = [IsAuthenticated]

    def get_throttles(self) -> list[BaseThrottle]:
        """Only downloads count against the ``downloads`` rate; polling a draw's status does not."""
        return super().get_throttles() if self.request.query_params.get("download") == "1" else []

    @extend_schema(responses=DrawOutput)
    def get(self, request: Request, entitlement_id: str, draw_id: str) -> Any:
        draw = get_object_or_404(
            SampleDraw, pk=draw_id, entitlement_id=entitlement_id, buyer=signed_in_user(request)
        )
        if request.query_params.get("download") != "1":
            return Response(DrawOutput(draw).data)
        # Not "format": DRF reads that query parameter to pick a renderer.
        fmt = request.query_params.get("as", "parquet")
        entitlement = Entitlement.objects.get(pk=draw.entitlement_id)
        try:
            if fmt not in FORMATS:
                raise downloads.DeliveryError(
                    f"Unknown format {fmt!r}; use csv, parquet or jsonl.", "invalid_format", 400
                )
            delivery = downloads.prepare_draw_delivery(
                entitlement, downloads.deliverable_draw(entitlement, draw.id), fmt
            )
        except downloads.DeliveryError as error:
            downloads_api.refuse(request, error)
        return downloads_api.serve_delivery(self, request, delivery)
