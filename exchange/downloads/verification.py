"""Finding a delivered copy's signed receipt from the copy's SHA-256 alone (issue 17 #5).

Used by certificate verification (page, API, ``manage.py verify_certificate``: ``SYNTHEX_RECEIPT_FINDER``)
and served to anyone holding the copy: ``GET /api/v1/deliveries/by-sha256/{sha256}/receipt/``. Knowing a
copy's SHA-256 means holding the copy (or its receipt), so the signed receipt it returns tells nothing new.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.downloads.models import Delivery
from marketplace.core.api import ApiError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def receipt_for_sha256(sha256: str) -> dict[str, Any] | None:
    """The signed receipt of the delivered copy whose SHA-256 is ``sha256`` (lower-case hex), or ``None``.

    Copies are deterministic per (source, format, fingerprint), so one hash names one delivery."""
    if not _SHA256.match(sha256):
        return None
    delivery = Delivery.objects.filter(sha256=sha256).order_by("created_at").first()
    return None if delivery is None else dict(delivery.receipt)


class DeliveryReceiptByHash(APIView):
    """``GET deliveries/by-sha256/{sha256}/receipt/``: the signed delivery receipt of the copy with this
    SHA-256 (404 ``not_a_delivery`` when no copy has it). No login: the hash is the proof of holding it."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, sha256: str) -> Response:
        receipt = receipt_for_sha256(sha256.lower())
        if receipt is None:
            raise ApiError("No delivered copy has this SHA-256.", "not_a_delivery", 404)
        return Response(receipt)
