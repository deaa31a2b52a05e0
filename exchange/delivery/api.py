"""``GET /api/v1/entitlements/``: the signed-in buyer's entitlements."""

from __future__ import annotations

from typing import Any

from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from exchange.delivery.models import Entitlement
from exchange.delivery.selectors import entitlements_of


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
