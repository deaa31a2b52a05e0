"""REST API for products and versions (thin views: parse, check permission, call one service, serialize)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import Organization
from marketplace.catalog import selectors, services
from marketplace.catalog.models import Product, ProductLicense, ProductVersion
from marketplace.catalog.serializers import (
    ProductInputSerializer,
    ProductOutputSerializer,
    ProductUpdateSerializer,
    VersionInputSerializer,
    VersionOutputSerializer,
    VersionSubmitSerializer,
)
from marketplace.catalog.uploads import upload_error
from marketplace.core.api import ApiError
from marketplace.core.auth import signed_in_user


def _catalog_error(error: services.CatalogError) -> ApiError:
    return ApiError(error.message, error.code, error.status)


def _licenses(items: list[dict[str, Any]]) -> list[services.LicensePrice]:
    return [services.LicensePrice(i["code"], i["price_minor"], i["currency"]) for i in items]


class ProductListCreate(generics.ListAPIView):
    """Search the catalog (`q`, `domain`, `license`, `format`, `provider`, `kind`, `min_price`, `max_price`,
    `rows`, `min_quality`, `privacy_grade`, `ordering`) or create a product."""

    serializer_class = ProductOutputSerializer
    permission_classes = [IsAuthenticatedOrReadOnly]

    def get_queryset(self) -> QuerySet[Product]:
        query = selectors.CatalogQuery.from_params(self.request.query_params)
        if query.errors:
            raise ApiError(" ".join(query.errors), "bad_query")
        return selectors.search_products(query).prefetch_related(
            Prefetch("licenses", queryset=ProductLicense.objects.order_by("price_minor"))
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, required=False)
            for name in (
                "q",
                "domain",
                "license",
                "format",
                "provider",
                "kind",
                "min_price",
                "max_price",
                "rows",
                "min_quality",
                "privacy_grade",
                "ordering",
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ProductInputSerializer, responses={201: ProductOutputSerializer})
    def post(self, request: Request) -> Response:
        data = ProductInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        organizations = signed_in_user(request).provider_organizations()
        if values.get("organization"):
            organization = Organization.objects.filter(slug=values["organization"]).first()
            if organization is None:
                raise ApiError(f"No organization {values['organization']!r}.", "unknown_organization", 400)
            if not organizations.filter(pk=organization.pk).exists():
                raise ApiError(
                    "You are not a member of that provider organization.", "permission_denied", 403
                )
        else:
            count = organizations.count()
            if count == 0:
                raise ApiError("You are not a member of any provider organization.", "not_a_provider", 403)
            if count > 1:
                raise ApiError(
                    "You belong to several providers; say which with 'organization'.",
                    "ambiguous_organization",
                )
            organization = organizations.get()
        try:
            product = services.create_product(
                user=signed_in_user(request),
                organization=organization,
                title=values["title"],
                summary=values["summary"],
                description_md=values.get("description", ""),
                domain=values["domain"],
                kind=values["kind"],
                tags=values.get("tags", []),
                licenses=_licenses(values["licenses"]),
                slug=values.get("slug", ""),
            )
        except services.CatalogError as error:
            raise _catalog_error(error) from None
        return Response(ProductOutputSerializer(product, context={"request": request}).data, status=201)


class ProductDetail(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    def _get(self, request: Request, slug: str) -> Product:
        product = get_object_or_404(Product.objects.select_related("organization"), slug=slug)
        if not (product.is_listed or selectors.can_manage(request.user, product)):
            raise ApiError("Not found.", "not_found", 404)
        return product

    @extend_schema(responses=ProductOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(ProductOutputSerializer(self._get(request, slug), context={"request": request}).data)

    @extend_schema(request=ProductUpdateSerializer, responses=ProductOutputSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        product = self._get(request, slug)
        services.ensure_can_manage(signed_in_user(request), product)
        data = ProductUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            product = services.update_product(
                product,
                user=signed_in_user(request),
                title=values.get("title"),
                summary=values.get("summary"),
                description_md=values.get("description"),
                domain=values.get("domain"),
                tags=values.get("tags"),
                licenses=_licenses(values["licenses"]) if "licenses" in values else None,
                is_listed=values.get("is_listed"),
            )
        except services.CatalogError as error:
            raise _catalog_error(error) from None
        product.refresh_from_db()
        return Response(ProductOutputSerializer(product, context={"request": request}).data)


class VersionCreate(APIView):
    """Upload a version: multipart with one or more `synthetic` files, optional private `train` and
    `holdout`, `target`, `changelog`, `metadata` (JSON: column → SDV sdtype corrections) and `submit`
    (default true: send to certification at once; false: keep a draft to confirm later)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=VersionInputSerializer, responses={201: VersionOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        services.ensure_can_manage(signed_in_user(request), product)
        files = request.FILES  # parses the body through the streaming, hashing upload handler
        problem = upload_error(request._request)
        if problem is not None:
            raise ApiError(problem.message, problem.code, 413 if problem.code == "too_large" else 400)
        payload = {
            key: request.data.get(key)
            for key in ("target", "changelog", "metadata", "submit")
            if key in request.data
        }
        data = VersionInputSerializer(
            data={
                **payload,
                "synthetic": files.getlist("synthetic"),
                **{role: files[role] for role in ("train", "holdout") if role in files},
            }
        )
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version: ProductVersion | None = None
        try:
            version = services.create_version(
                product,
                user=signed_in_user(request),
                synthetic=values["synthetic"],
                train=values.get("train"),
                holdout=values.get("holdout"),
                target_column=values.get("target", ""),
                changelog=values.get("changelog", ""),
            )
            if values["submit"]:
                version = services.submit_version(
                    version, user=signed_in_user(request), sdtype_overrides=values.get("metadata")
                )
        except services.CatalogError as error:
            if version is not None and version.status == "draft":
                services.delete_draft(version, user=signed_in_user(request))
            raise _catalog_error(error) from None
        return Response(VersionOutputSerializer(version, context={"show_reference": True}).data, status=201)


class VersionDetail(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=VersionOutputSerializer)
    def get(self, request: Request, slug: str, number: int) -> Response:
        product = get_object_or_404(Product, slug=slug)
        version = get_object_or_404(selectors.visible_versions(product, request.user), number=number)
        manage = selectors.can_manage(request.user, product)
        if not (product.is_listed or manage):
            raise ApiError("Not found.", "not_found", 404)
        return Response(VersionOutputSerializer(version, context={"show_reference": manage}).data)


class VersionSubmit(APIView):
    """Confirm a draft version's metadata (optionally corrected) and send it to certification."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=VersionSubmitSerializer, responses=VersionOutputSerializer)
    def post(self, request: Request, slug: str, number: int) -> Response:
        product = get_object_or_404(Product, slug=slug)
        services.ensure_can_manage(signed_in_user(request), product)
        version = get_object_or_404(ProductVersion, product=product, number=number)
        data = VersionSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            version = services.submit_version(
                version,
                user=signed_in_user(request),
                sdtype_overrides=data.validated_data.get("metadata"),
                target_column=data.validated_data.get("target"),
            )
        except services.CatalogError as error:
            raise _catalog_error(error) from None
        return Response(
            VersionOutputSerializer(version, context={"show_reference": True}).data, status=status.HTTP_200_OK
        )
