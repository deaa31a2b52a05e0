"""Shapes shared by the OpenAPI descriptions of every app's API (drf-spectacular)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every API error: ``{"detail": sentence, "code": slug}`` with a 4xx status (more keys may follow)."""

    detail = serializers.CharField()
    code = serializers.CharField()


ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
}

SIGNED_DOCUMENT = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="A signed JSON document (RFC 8785 canonical bytes, Ed25519 signature); see DESIGN.md.",
)

BINARY = OpenApiResponse(OpenApiTypes.BINARY, description="The file's bytes (HTTP Range supported).")
