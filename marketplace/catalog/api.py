"""REST API for products and versions (thin views: parse, check permission, call one service, serialize)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import Organization
from marketplace.catalog import direct_uploads, relational_api, selectors, services, upload_sessions
from marketplace.catalog.models import Product, ProductLicense, ProductVersion, Upload
from marketplace.catalog.serializers import (
    ProductDetailOutputSerializer,
    ProductInputSerializer,
    ProductOutputSerializer,
    ProductUpdateSerializer,
    VersionInputSerializer,
    VersionOutputSerializer,
    VersionSubmitSerializer,
)
from marketplace.catalog.uploads import raise_upload_error
from marketplace.certification import submission
from marketplace.certification.plausibility import (
    enforceable,
    reference_rules,
)
from marketplace.core.api import ApiError
from marketplace.core.auth import signed_in_user
from marketplace.core.page_cache import cached_api_response
from marketplace.core.schema import ERRORS


def _licenses(items: list[dict[str, Any]]) -> list[services.LicensePrice]:
    return [services.LicensePrice(i["code"], i["price_minor"], i["currency"]) for i in items]


# GenericAPIView + ListModelMixin rather than ListAPIView: `get` answers from the cache, a plain HttpResponse.
class ProductListCreate(mixins.ListModelMixin, generics.GenericAPIView):
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
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        # A page of listed products is the same for every caller (no field depends on who asks): once DRF has
        # authenticated the caller, anonymous and token reads share the page cache, invalidated by any
        # catalog change. The browsable API and other media types (`; indent=4`) are rendered every time.
        if request.accepted_media_type != "application/json":
            return self.list(request, *args, **kwargs)
        return cached_api_response(request, lambda: self._rendered_page(request))

    def _rendered_page(self, request: Request) -> HttpResponse:
        page = self.list(request)
        body = request.accepted_renderer.render(
            page.data, request.accepted_media_type, self.get_renderer_context()
        )
        return HttpResponse(body, content_type=request.accepted_media_type)

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
        return Response(ProductOutputSerializer(product, context={"request": request}).data, status=201)


class ProductDetail(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    def _get(self, request: Request, slug: str) -> Product:
        product = get_object_or_404(Product.objects.select_related("organization"), slug=slug)
        if not (product.is_listed or selectors.can_manage(request.user, product)):
            raise ApiError("Not found.", "not_found", 404)
        return product

    @extend_schema(responses=ProductDetailOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        product = self._get(request, slug)
        return Response(ProductDetailOutputSerializer(product, context={"request": request}).data)

    @extend_schema(request=ProductUpdateSerializer, responses=ProductOutputSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        product = self._get(request, slug)
        services.ensure_can_manage(signed_in_user(request), product)
        data = ProductUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
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
        product.refresh_from_db()
        return Response(ProductOutputSerializer(product, context={"request": request}).data)


class VersionCreate(APIView):
    """Create a version from files sent in this request (multipart: one or more `synthetic` files, optional
    private `train` and `holdout`) or from completed upload sessions (JSON: `synthetic` a list of upload
    ids, `train`/`holdout` upload ids). Also `target`, `changelog`, `metadata` (JSON: column → SDV sdtype
    corrections) and `submit` (default true: send to certification at once; false: keep a draft)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request=VersionInputSerializer, responses={201: VersionOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        product = get_object_or_404(Product, slug=slug)
        user = signed_in_user(request)
        services.ensure_can_manage(user, product)
        if relational_api.is_relational_request(request):
            return relational_api.create_relational(request, product, user)
        sessions: list[upload_sessions.SessionUploadedFile] = []
        if request.content_type.startswith("application/json"):
            references = VersionFromUploadsSerializer(data=request.data)
            references.is_valid(raise_exception=True)
            ids = references.validated_data
            sessions = upload_sessions.completed_uploads(
                user, [*ids["synthetic"], *[ids[r] for r in ("train", "holdout") if ids.get(r)]]
            )
            count = len(ids["synthetic"])
            files: dict[str, Any] = {"synthetic": sessions[:count]}
            for role in ("train", "holdout"):
                if ids.get(role):
                    files[role] = sessions[count]
                    count += 1
        else:
            uploaded = request.FILES  # parses the body through the streaming, hashing upload handler
            raise_upload_error(request._request)
            files = {"synthetic": uploaded.getlist("synthetic")}
            files.update({role: uploaded[role] for role in ("train", "holdout") if role in uploaded})
        payload = {
            key: request.data.get(key)
            for key in ("target", "changelog", "metadata", "rules", "submit")
            if key in request.data
        }
        data = VersionInputSerializer(data={**payload, **files})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = submission.create_and_submit_version(
            product,
            user=user,
            synthetic=values["synthetic"],
            train=values.get("train"),
            holdout=values.get("holdout"),
            target_column=values.get("target", ""),
            changelog=values.get("changelog", ""),
            sessions=sessions,
            submit=values["submit"],
            sdtype_overrides=values.get("metadata"),
            rules=values.get("rules"),
        )
        return Response(VersionOutputSerializer(version, context={"show_reference": True}).data, status=201)


class VersionFromUploadsSerializer(serializers.Serializer):
    synthetic = serializers.ListField(
        child=serializers.CharField(max_length=40), allow_empty=False, max_length=10
    )
    train = serializers.CharField(max_length=40, required=False, allow_blank=True)
    holdout = serializers.CharField(max_length=40, required=False, allow_blank=True)


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
        if version.status == "draft" and (missing := selectors.missing_reference(version)):
            raise ApiError(missing, "reference_required", 400)
        version = submission.submit_version(
            version,
            user=signed_in_user(request),
            sdtype_overrides=data.validated_data.get("metadata"),
            target_column=data.validated_data.get("target"),
            rules=submission.checked_rule_choices(version, data.validated_data.get("rules")),
        )
        return Response(
            VersionOutputSerializer(version, context={"show_reference": True}).data, status=status.HTTP_200_OK
        )


class UploadStartSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1)
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True)
    chunk_size = serializers.IntegerField(required=False)
    organization = serializers.SlugField(required=False, allow_blank=True)
    product = serializers.SlugField(required=False, allow_blank=True, max_length=80)


class UploadCompleteSerializer(serializers.Serializer):
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True)


def _transfer(upload: Upload) -> dict[str, Any]:
    """Where the chunks go and how far they got: this server's chunk URLs, or presigned part URLs of the
    object store (asked there: the parts it holds without a gap, with their MD5 for a resuming client)."""
    if upload.transport == Upload.Transport.SERVER:
        return {
            "transport": upload.transport,
            "part_urls": None,
            "received_bytes": upload.received_bytes,
            "next_chunk": len(upload.chunk_sha256),
            "chunk_sha256": upload.chunk_sha256,
            "chunk_md5": None,
        }
    if upload.status != Upload.Status.OPEN:
        count = upload_sessions.chunk_count(upload)
        return {
            "transport": upload.transport,
            "part_urls": None,
            "received_bytes": upload.size,
            "next_chunk": count,
            "chunk_sha256": [""] * count,
            "chunk_md5": None,
        }
    parts = direct_uploads.received_parts(upload)
    return {
        "transport": upload.transport,
        "part_urls": direct_uploads.part_urls(upload),
        "received_bytes": sum(int(part["Size"]) for part in parts),
        "next_chunk": len(parts),
        "chunk_sha256": [""] * len(parts),
        "chunk_md5": [direct_uploads.part_md5(part) for part in parts],
    }


def _upload_body(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "filename": upload.filename,
        "size": upload.size,
        "chunk_size": upload.chunk_size,
        "chunks": upload_sessions.chunk_count(upload),
        **_transfer(upload),
        "sha256": upload.sha256 or None,
        "status": upload.status,
        "validation": {
            "status": upload.validation,
            "progress": upload.validation_progress,
            "format": upload.format or None,
            "rows": (upload.profile or {}).get("rows"),
            "columns": [column["name"] for column in (upload.profile or {}).get("columns", [])],
            "code": upload.error_code or None,
            "error": upload.error or None,
        },
    }


class UploadValidationOutput(serializers.Serializer):
    status = serializers.CharField()
    progress = serializers.IntegerField()
    format = serializers.CharField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)
    columns = serializers.ListField(child=serializers.CharField())
    code = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class UploadOutput(serializers.Serializer):
    """An upload session (:func:`_upload_body`)."""

    id = serializers.CharField()
    filename = serializers.CharField()
    size = serializers.IntegerField()
    chunk_size = serializers.IntegerField()
    chunks = serializers.IntegerField()
    transport = serializers.ChoiceField(choices=["server", "s3"])
    part_urls = serializers.ListField(child=serializers.URLField(), allow_null=True)
    received_bytes = serializers.IntegerField()
    next_chunk = serializers.IntegerField()
    chunk_sha256 = serializers.ListField(child=serializers.CharField())
    chunk_md5 = serializers.ListField(child=serializers.CharField(), allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    validation = UploadValidationOutput()


class VersionRulesOutput(serializers.Serializer):
    rules = serializers.ListField(
        child=serializers.DictField(), help_text="Rules found on the reference rows."
    )
    choices = serializers.DictField(help_text="The provider's choices: dismissed and declared rules.")
    sdv = serializers.DictField(help_text="Which rules SDV constraints could enforce.")


def _own_upload(request: Request, upload_id: str) -> Upload:
    upload = Upload.objects.filter(pk=upload_id, owner=signed_in_user(request)).first()
    if upload is None:
        raise ApiError(f"No upload {upload_id!r} of yours.", "not_found", 404)
    return upload


class UploadStart(APIView):
    """Open a resumable upload (members of a provider organization only: `organization` slug, or the
    `product` slug it is for, when the user belongs to several; each organization has a quota of open
    sessions, 429 `too_many_uploads`, and of their declared bytes, 413 `upload_quota_exceeded`).

    With `transport` "server" PUT each chunk's raw bytes to `chunks/{index}/` in order; with "s3" PUT
    chunk `index` straight to the object store at `part_urls[index]` (presigned; GET the upload for fresh
    ones). Then POST `complete/`. GET the upload to resume from `next_chunk`. The server hashes the whole
    file as it arrives; a chunk's `X-Chunk-SHA256` header, when sent, is checked too and listed in
    `chunk_sha256` ("" for chunks sent without one; on "s3", `chunk_md5` lists the store's MD5 of each
    part), so a client can confirm its local file still matches before resuming. After `complete/` a
    worker validates the file as a table (`validation.status` pending → running with
    `validation.progress` → valid or invalid with `code` and `error`); attach it to a version once valid
    (attaching one still pending validates it in that request on "server"; one being checked answers 409
    `upload_validating`)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=UploadStartSerializer, responses={201: UploadOutput, 413: ERRORS[400], **ERRORS})
    def post(self, request: Request) -> Response:
        data = UploadStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = signed_in_user(request)
        organization = upload_sessions.upload_organization(
            user,
            organization=data.validated_data.get("organization", ""),
            product=data.validated_data.get("product", ""),
        )
        upload = upload_sessions.start_upload(
            owner=user,
            organization=organization,
            filename=data.validated_data["filename"],
            size=data.validated_data["size"],
            sha256=data.validated_data.get("sha256", ""),
            chunk_size=data.validated_data.get("chunk_size"),
        )
        return Response(_upload_body(upload), status=201)


class UploadDetail(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UploadOutput, **ERRORS})
    def get(self, request: Request, upload_id: str) -> Response:
        return Response(_upload_body(_own_upload(request, upload_id)))

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request: Request, upload_id: str) -> Response:
        upload = _own_upload(request, upload_id)
        if upload.status == Upload.Status.ATTACHED:
            raise ApiError("This upload belongs to a version now.", "upload_attached", 409)
        upload_sessions.abort_upload(upload)
        return Response(status=204)


class UploadChunk(APIView):
    """The raw bytes of one chunk (not multipart): `Content-Length` must be the chunk's exact size."""

    permission_classes = [IsAuthenticated]
    parser_classes: list[Any] = []

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("X-Chunk-SHA256", str, OpenApiParameter.HEADER, required=False)],
        responses={200: UploadOutput, 411: ERRORS[400], 413: ERRORS[400], **ERRORS},
    )
    def put(self, request: Request, upload_id: str, index: int) -> Response:
        upload = _own_upload(request, upload_id)
        raw = request._request
        try:
            length = int(raw.META.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0:
            raise ApiError("Send the chunk with a Content-Length header.", "length_required", 411)
        upload = upload_sessions.receive_chunk(
            upload,
            index=index,
            length=length,
            body=raw,
            chunk_sha256=raw.headers.get("X-Chunk-SHA256", ""),
        )
        return Response(_upload_body(upload))


class UploadComplete(APIView):
    """Every chunk (or part) arrived: assemble and check the file, then a worker validates it. Optional
    `sha256`: the client's hash of the whole file, checked against the bytes the server or store holds."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=UploadCompleteSerializer, responses={200: UploadOutput, **ERRORS})
    def post(self, request: Request, upload_id: str) -> Response:
        data = UploadCompleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = upload_sessions.complete_upload(
            _own_upload(request, upload_id), sha256=data.validated_data.get("sha256", "")
        )
        return Response(_upload_body(upload))


class VersionRules(APIView):
    """The plausibility rules certification will check on a version's reference rows, the provider's choices,
    and which rules SDV constraints could enforce (members of the provider only)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: VersionRulesOutput, **ERRORS})
    def get(self, request: Request, slug: str, number: int) -> Response:
        product = get_object_or_404(Product, slug=slug)
        services.ensure_can_manage(signed_in_user(request), product)
        version = get_object_or_404(ProductVersion, product=product, number=number)
        rules = reference_rules(version, version.rules.get("declared"))
        return Response(
            {"rules": rules, "choices": version.rules, "sdv": enforceable(rules, version.sdv_metadata)}
        )
