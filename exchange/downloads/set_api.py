"""``POST /api/v1/entitlements/{id}/sets/``: a signed link to the buyer's copy of a whole relational version
(every table in one zip, one receipt); ``GET entitlements/{id}/sets/{number}.{format}`` redirects to one."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.delivery.models import Entitlement
from exchange.downloads import services, sets
from exchange.downloads.api import REDIRECT_TO_LINK, ThrottledDownloads, link_payload
from exchange.downloads.constants import FORMATS
from exchange.downloads.models import Delivery, Download
from marketplace.core.api import ApiError
from marketplace.core.schema import BINARY, ERRORS


class SetLinkInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="A later version the license includes (default its own)."
    )


def _set_delivery(request: Request, entitlement_id: str, number: int | None, fmt: str) -> Delivery:
    entitlement = get_object_or_404(
        Entitlement.objects.select_related("version__product"), pk=entitlement_id, buyer=request.user
    )
    try:
        if fmt not in FORMATS:
            raise services.DeliveryError(
                "invalid_format", f"Unknown format {fmt!r}; use csv, parquet or jsonl.", 400
            )
        version = sets.deliverable_set(entitlement, number)
        return sets.prepare_set_delivery(entitlement, version, fmt)
    except services.DeliveryError as error:
        services.record_download(
            outcome=Download.Outcome.REFUSED,
            reason=error.code,
            user=request.user,  # type: ignore[arg-type]
        )
        raise ApiError(error.message, error.code, error.status) from None


class EntitlementSetLinks(ThrottledDownloads):
    """``POST {format, version?}`` → a signed link (15 minutes) to the buyer's fingerprinted copy of every
    table of a relational version, as one zip; the answer lists each table's delivered SHA-256 and rows."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=SetLinkInput, responses={201: dict})
    def post(self, request: Request, entitlement_id: str) -> Response:
        data = SetLinkInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        delivery = _set_delivery(request, entitlement_id, values.get("version"), values["format"])
        link = services.issue_link(delivery, request.user)  # type: ignore[arg-type]
        payload: dict[str, Any] = link_payload(request, delivery, link)
        tables = delivery.receipt["receipt"]["tables"]
        return Response({**payload, "version": values.get("version") or None, "tables": tables}, status=201)


class EntitlementSet(ThrottledDownloads):
    """``GET entitlements/{id}/sets/{number}.{format}`` → 302 to a fresh signed link (one line for curl -L)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={302: REDIRECT_TO_LINK, 200: BINARY, **ERRORS})
    def get(self, request: Request, entitlement_id: str, number: int, fmt: str) -> HttpResponseRedirect:
        delivery = _set_delivery(request, entitlement_id, number, fmt)
        link = services.issue_link(delivery, request.user)  # type: ignore[arg-type]
        return HttpResponseRedirect(reverse("api-download", args=[link.token]))
