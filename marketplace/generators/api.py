"""``POST /api/v1/products/{slug}/generator/`` (fit on the platform or upload a synthesizer) and ``GET``."""

from __future__ import annotations

import json
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.catalog import selectors
from marketplace.catalog.models import Product
from marketplace.catalog.uploads import raise_upload_error
from marketplace.certification.models import Job
from marketplace.core.api import ApiError
from marketplace.core.auth import signed_in_user
from marketplace.generators import budget, engines, fitting, native
from marketplace.generators.models import GeneratorModel, Synthesizer
from marketplace.generators.selectors import describe
from marketplace.generators.services import setup


@extend_schema_field(OpenApiTypes.STR)
class JsonText(serializers.Field):
    """A JSON value sent as text in a multipart form (or as JSON already)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            if not data.strip():
                return None
            try:
                return json.loads(data)
            except ValueError:
                raise serializers.ValidationError("Not valid JSON.") from None
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class GeneratorInput(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["fit", "upload"])
    data = serializers.FileField(  # type: ignore[assignment]  # the form field is named data, as in the API
        required=False, help_text="fit: the real rows (CSV, Parquet, JSON Lines)."
    )
    synthesizer = serializers.ChoiceField(
        choices=[c for c in Synthesizer.values if c != Synthesizer.UPLOADED], required=False
    )
    epochs = serializers.IntegerField(required=False, min_value=1, max_value=fitting.MAX_EPOCHS)
    constraints = JsonText(required=False, help_text='e.g. [{"type": "Inequality", ...}] (SDV 2.0 sdv.cag)')
    enforce_rules = serializers.BooleanField(
        required=False,
        default=False,
        help_text="fit: enforce the plausibility rules of the real rows through SDV constraints where possible.",
    )
    model = serializers.FileField(required=False, help_text="upload: SDV's saved synthesizer file.")
    train = serializers.FileField(required=False, help_text="upload: the reference train rows.")
    holdout = serializers.FileField(required=False, help_text="upload: reference rows the model never saw.")
    metadata = JsonText(required=False, help_text="Column → SDV sdtype corrections.")
    target = serializers.CharField(required=False, allow_blank=True, max_length=200)
    row_quotas = JsonText(required=False, help_text='Rows per license, e.g. {"standard": 100000}.')
    epsilon = serializers.FloatField(
        required=False, help_text="fit with dp_mst: the ε this fit spends from the product's budget."
    )
    delta = serializers.FloatField(
        required=False, help_text="fit with dp_mst: δ < 1/n (default min(1e-6, 0.1/n))."
    )
    epsilon_total = serializers.FloatField(
        required=False, help_text="dp_mst: declare the product's total ε budget (first fit, or to change it)."
    )
    public_domain = JsonText(
        required=False,
        help_text='chow_liu, dp_mst: public categories or ranges, e.g. {"age": {"min": 0, "max": 120}}.',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needed = ("data", "synthesizer") if attrs["mode"] == "fit" else ("model", "train")
        missing = [name for name in needed if not attrs.get(name)]
        if missing:
            raise serializers.ValidationError(f"{attrs['mode']} needs {' and '.join(missing)}.")
        return attrs


def generator_output(generator: GeneratorModel) -> dict[str, Any]:
    job = Job.objects.filter(version=generator.version, kind=Job.Kind.FIT).first()
    certificate = generator.version.certificates.first()
    return {
        "product": generator.version.product.slug,
        "version": generator.version.number,
        **describe(generator),
        **native.describe(generator),
        "job": (
            {
                "id": str(job.pk),
                "status": job.status,
                "stage": job.stage,
                "progress": job.progress,
                "error": job.error,
            }
            if job
            else None
        ),
        "certificate": certificate.id if certificate else None,
    }


class GeneratorCreate(APIView):
    """Fit (`mode=fit`: `data`, `synthesizer`, optional `epochs`, `constraints`) or upload (`mode=upload`:
    `model`, `train`, optional `holdout`) a generator as the product's next version; both take `metadata`,
    `target`, `row_quotas`. Answers 202 with the generator and its job (`GET /api/v1/jobs/{id}/`)."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=GeneratorInput, responses={202: dict})
    def post(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        user = signed_in_user(request)
        request.FILES  # noqa: B018 - parse the body through the hashing upload handler first
        raise_upload_error(request._request)
        data = GeneratorInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {
            "user": user,
            "metadata": values.get("metadata"),
            "target_column": values.get("target") or "",
            "row_quotas": values.get("row_quotas"),
        }
        if values["mode"] == "fit" and engines.is_native(values["synthesizer"]):
            generator = native.create_native_generator(
                product,
                data=values["data"],
                synthesizer=values["synthesizer"],
                epsilon=values.get("epsilon"),
                delta=values.get("delta"),
                epsilon_total=values.get("epsilon_total"),
                public_domain=values.get("public_domain"),
                **common,
            )
        elif values["mode"] == "fit":
            generator = setup.create_fitted_generator(
                product,
                data=values["data"],
                synthesizer=values["synthesizer"],
                epochs=values.get("epochs"),
                constraints=values.get("constraints"),
                enforce_rules=values.get("enforce_rules", False),
                **common,
            )
        else:
            generator = setup.create_uploaded_generator(
                product,
                model_file=values["model"],
                train=values["train"],
                holdout=values.get("holdout"),
                **common,
            )
        generator.refresh_from_db()
        return Response(generator_output(generator), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=dict)
    def get(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        versions = selectors.visible_versions(product, request.user)
        generator = (
            GeneratorModel.objects.filter(version__in=versions)
            .select_related("version__product")
            .order_by("-version__number")
            .first()
        )
        if generator is None:
            raise ApiError("This product has no generator yet.", "not_found", status.HTTP_404_NOT_FOUND)
        return Response(generator_output(generator))


class PrivacyBudgetInput(serializers.Serializer):
    epsilon_total = serializers.FloatField(help_text="The product's total ε; DP fits spend from it.")


class PrivacyBudgetView(APIView):
    """`GET` the product's ε budget (`epsilon_total`, `epsilon_spent`, `epsilon_remaining`); `PUT` declares
    it (the provider; never below what was spent). Each declaration and each spend is a ledger event."""

    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=dict)
    def get(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        return Response({"product": product.slug, **budget.budget_of(product)})

    @extend_schema(request=PrivacyBudgetInput, responses=dict)
    def put(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        user = signed_in_user(request)
        data = PrivacyBudgetInput(data=request.data)
        data.is_valid(raise_exception=True)
        setup.check_generator_product(product, user)
        budget.declare_budget(product, data.validated_data["epsilon_total"])
        return Response({"product": product.slug, **budget.budget_of(product)})
