"""``GET /api/v1/entitlements/``: the signed-in buyer's entitlements; ``…/{id}/samples/``: rows drawn from a
generator under one of them (the quota, the draws, and a succeeded draw's fingerprinted copy)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from exchange.delivery.models import Entitlement
from exchange.delivery.samples import quota_state, request_sample
from exchange.delivery.selectors import entitlements_of
from exchange.downloads import api as downloads_api
from exchange.downloads import services as downloads
from exchange.downloads.constants import FORMATS
from marketplace.core.auth import signed_in_user
from marketplace.generators.models import GeneratorModel, SampleDraw


class EntitlementOutput(serializers.ModelSerializer):
    product = serializers.CharField(source="version.product.slug")
    version = serializers.IntegerField(source="version.number")
    version_id = serializers.IntegerField()

    class Meta:
        model = Entitlement
        fields = [
            "id",
            "product",
            "version",
            "version_id",
            "license_code",
            "status",
            "source",
            "granted_at",
            "revoked_at",
        ]


class EntitlementList(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = EntitlementOutput

    def get_queryset(self) -> Any:
        return entitlements_of(self.request.user)  # type: ignore[arg-type]  # IsAuthenticated: never anonymous


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
                    "invalid_format", f"Unknown format {fmt!r}; use csv, parquet or jsonl.", 400
                )
            delivery = downloads.prepare_draw_delivery(
                entitlement, downloads.deliverable_draw(entitlement, draw.id), fmt
            )
        except downloads.DeliveryError as error:
            downloads_api.refuse(request, error)
        return downloads_api.serve_delivery(self, request, delivery)
