from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import (
    Domain,
    Product,
    ProductKind,
    ProductLicense,
    ProductVersion,
    VersionFile,
)
from marketplace.catalog.profiles import visible_profile
from marketplace.catalog.selectors import version_on_sale
from marketplace.catalog.uploads import HashedFile


class LicenseInputSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=list(LICENSES))
    price_minor = serializers.IntegerField(min_value=0, max_value=10**12)
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", error_messages={"invalid": "Use an ISO 4217 code like USD."}
    )


class ProductInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=160)
    summary = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, max_length=50_000)
    domain = serializers.ChoiceField(choices=Domain.choices)
    kind = serializers.ChoiceField(choices=ProductKind.choices, default=ProductKind.DATASET)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=12)
    organization = serializers.SlugField(required=False)
    slug = serializers.SlugField(required=False, max_length=80)
    licenses = LicenseInputSerializer(many=True, allow_empty=False)


class ProductUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=160, required=False)
    summary = serializers.CharField(max_length=300, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=50_000)
    domain = serializers.ChoiceField(choices=Domain.choices, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=12)
    licenses = LicenseInputSerializer(many=True, allow_empty=False, required=False)
    is_listed = serializers.BooleanField(required=False)


class LicenseOutputSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = ProductLicense
        fields = ["code", "name", "price_minor", "currency"]

    def get_name(self, obj: ProductLicense) -> str:
        return LICENSES[obj.code].name


class ProductOutputSerializer(serializers.ModelSerializer):
    organization: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    provider = serializers.CharField(source="organization.name", read_only=True)
    licenses = LicenseOutputSerializer(many=True, read_only=True)
    formats = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "slug",
            "title",
            "summary",
            "description_md",
            "description_html",
            "domain",
            "kind",
            "tags",
            "organization",
            "provider",
            "licenses",
            "formats",
            "row_count",
            "column_count",
            "price_from_minor",
            "price_currency",
            "quality_score",
            "quality_grade",
            "privacy_grade",
            "dcr_share",
            "is_listed",
            "published_at",
            "created_at",
            "updated_at",
            "url",
        ]

    def get_formats(self, obj: Product) -> list[str]:
        return [f for f in obj.formats.split(",") if f]

    def get_url(self, obj: Product) -> str:
        request = self.context.get("request")
        path = f"/products/{obj.slug}/"
        return request.build_absolute_uri(path) if request else path


class ProductDetailOutputSerializer(ProductOutputSerializer):
    """A product with the number and id of the version buyers can buy (``null`` when none is on sale); a
    newer draft or failed version never replaces it."""

    version_on_sale = serializers.SerializerMethodField()
    epsilon_total = serializers.SerializerMethodField()
    epsilon_spent = serializers.SerializerMethodField()

    class Meta(ProductOutputSerializer.Meta):
        fields = [*ProductOutputSerializer.Meta.fields, "version_on_sale", "epsilon_total", "epsilon_spent"]

    def get_epsilon_total(self, obj: Product) -> float | None:
        """The declared total ε of the product's DP fits (null: none declared)."""
        from marketplace.generators.budget import budget_of

        return budget_of(obj)["epsilon_total"]

    def get_epsilon_spent(self, obj: Product) -> float:
        """ε spent by the product's DP fits (each spend is a ``privacy.epsilon_spent`` ledger event)."""
        from marketplace.generators.budget import budget_of

        return float(budget_of(obj)["epsilon_spent"])

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"id": {"type": "integer"}, "number": {"type": "integer"}},
        }
    )
    def get_version_on_sale(self, obj: Product) -> dict[str, int] | None:
        version = version_on_sale(obj)
        return None if version is None else {"id": version.pk, "number": version.number}


class VersionFileSerializer(serializers.ModelSerializer):
    """A version's file; a reference file's profile is its shape only (no rows, no per-value figures)."""

    profile = serializers.SerializerMethodField()

    class Meta:
        model = VersionFile
        fields = [
            "id",
            "role",
            "table_name",
            "original_filename",
            "format",
            "sha256",
            "size_bytes",
            "rows",
            "column_count",
            "profile",
            "created_at",
            "deleted_at",
        ]

    def get_profile(self, obj: VersionFile) -> dict[str, Any]:
        return visible_profile(obj.profile or {}, is_reference=obj.is_reference)


class VersionOutputSerializer(serializers.ModelSerializer):
    product: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    files = serializers.SerializerMethodField()
    certification = serializers.SerializerMethodField()

    class Meta:
        model = ProductVersion
        fields = [
            "id",
            "product",
            "number",
            "status",
            "changelog",
            "target_column",
            "sdv_metadata",
            "rules",
            "created_at",
            "submitted_at",
            "certified_at",
            "files",
            "certification",
        ]

    def get_files(self, obj: ProductVersion) -> list[dict[str, Any]]:
        show_reference = self.context.get("show_reference", False)
        files = [f for f in obj.files.all() if show_reference or not f.is_reference]
        return list(VersionFileSerializer(files, many=True).data)

    def get_certification(self, obj: ProductVersion) -> dict[str, Any] | None:
        from marketplace.certification.selectors import certification_summary

        return certification_summary(obj)


class JSONObjectField(serializers.Field):
    """A JSON object given as a string (multipart forms) or as an object (JSON bodies)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except json.JSONDecodeError:
                raise serializers.ValidationError("Must be a JSON object.") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise serializers.ValidationError("Must be a JSON object mapping column names to SDV sdtypes.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class RulesField(serializers.Field):
    """Plausibility choices ``{"dismissed": [{"id", "reason"}], "declared": [statement]}`` given as an object
    or (multipart forms) as a JSON string; their content is checked by the certification app."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except json.JSONDecodeError:
                raise serializers.ValidationError("Must be a JSON object.") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError('Must be an object {"dismissed": [...], "declared": [...]}.')
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class UploadedFileField(serializers.Field):
    """A file received by this request or by an upload session; empty files are refused later by the
    ingest service, with its clearer message."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, HashedFile):
            raise serializers.ValidationError("Send a file.")
        return data

    def to_representation(self, value: Any) -> Any:
        return getattr(value, "name", None)


class VersionInputSerializer(serializers.Serializer):
    # Empty files pass here on purpose: the ingest service refuses them with its own, clearer message.
    synthetic = serializers.ListField(child=UploadedFileField(), allow_empty=False, max_length=10)
    train = UploadedFileField(required=False)
    holdout = UploadedFileField(required=False)
    target = serializers.CharField(required=False, allow_blank=True, max_length=200)
    changelog = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    metadata = JSONObjectField(required=False)
    rules = RulesField(required=False)
    submit = serializers.BooleanField(required=False, default=True)


class VersionSubmitSerializer(serializers.Serializer):
    metadata = JSONObjectField(required=False)
    rules = RulesField(required=False)
    target = serializers.CharField(required=False, allow_blank=True, max_length=200)
