"""``POST /api/v1/products/{slug}/generator/tables/``: fit SDV's HMA on a set of related tables (issue 20).

Multipart: one ``tables`` file per table (the file name is the table name), optional ``metadata`` (SDV
multi-table metadata as JSON text; detected when absent) and ``row_quotas`` (entity rows per license).
Answers 202 with the generator, its tables and its fit job (``GET /api/v1/jobs/{id}/`` shows the progress).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.catalog.models import Product
from marketplace.catalog.uploads import upload_error
from marketplace.core.api import ApiError
from marketplace.core.auth import signed_in_user
from marketplace.generators import relational
from marketplace.generators.api import JsonText, generator_output
from marketplace.generators.errors import GeneratorError


class HmaGeneratorInput(serializers.Serializer):
    tables = serializers.ListField(
        child=serializers.FileField(),
        help_text="One file per table (CSV, Parquet, JSON Lines); the file name is the table name.",
    )
    metadata = JsonText(required=False, help_text="SDV multi-table metadata (detected when absent).")
    row_quotas = JsonText(required=False, help_text='Entity rows per license, e.g. {"standard": 5000}.')


def hma_output(generator: Any) -> dict[str, Any]:
    """The generator as ``GET /api/v1/products/{slug}/generator/`` shows it, with its tables and keys."""
    return {**generator_output(generator), **relational.describe_tables(generator)}


class HmaGeneratorCreate(APIView):
    """Fit SDV's HMASynthesizer on related tables as the product's next version (202)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=HmaGeneratorInput, responses={202: dict})
    def post(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        user = signed_in_user(request)
        request.FILES  # noqa: B018 - parse the body through the hashing upload handler first
        problem = upload_error(request._request)
        if problem is not None:
            raise ApiError(problem.message, problem.code, 413 if problem.code == "too_large" else 400)
        fields = {key: request.data.get(key) for key in ("metadata", "row_quotas") if key in request.data}
        data = HmaGeneratorInput(data={**fields, "tables": request.FILES.getlist("tables")})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            generator = relational.create_hma_generator(
                product,
                user=user,
                tables=values["tables"],
                metadata=values.get("metadata"),
                row_quotas=values.get("row_quotas"),
            )
        except GeneratorError as error:
            raise ApiError(error.message, error.code, error.status, extra=error.extra) from None
        generator.refresh_from_db()
        return Response(hma_output(generator), status=status.HTTP_202_ACCEPTED)
