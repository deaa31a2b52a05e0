"""REST API for relational versions (issue 20): several synthetic tables with SDV multi-table metadata.

``POST /api/v1/products/{slug}/versions/`` becomes relational when the body carries several ``train``
files (multipart), a list of ``train`` upload ids (JSON) or a ``metadata`` object with a ``tables`` mapping
(``VersionCreate`` hands it here): ``synthetic``, ``train`` and optional ``holdout`` are one file per table
(named as the tables), ``metadata`` optional (detected otherwise), ``submit`` (default true). Upload
sessions must have come through the server (the S3 transport's bytes are not read by the web process). ``PUT .../versions/{n}/metadata/`` confirms or
corrects a draft's metadata. Refusals are 400 with ``problems`` naming table, column and count.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import User
from marketplace.catalog import relational, services, upload_sessions
from marketplace.catalog.models import Product, ProductVersion
from marketplace.catalog.serializers import VersionOutputSerializer
from marketplace.catalog.uploads import raise_upload_error
from marketplace.certification import submission
from marketplace.core.auth import signed_in_user


def is_relational_request(request: Request) -> bool:
    """A version upload with several train files (multipart) or upload ids (JSON), or multi-table metadata."""
    if request.content_type.startswith("application/json"):
        if isinstance(request.data.get("train"), list):
            return True
    elif not request.content_type.startswith("multipart/"):
        return False
    elif len(request.FILES.getlist("train")) > 1:
        return True
    try:
        metadata = relational.parse_metadata_text(request.data.get("metadata"))
    except services.CatalogError:
        return False
    return relational.is_relational_metadata(metadata)


def _flag(value: Any, default: bool) -> bool:
    if value in (None, ""):
        return default
    return str(value).lower() in ("1", "true", "yes", "on")


class SetFromUploadsSerializer(serializers.Serializer):
    synthetic = serializers.ListField(
        child=serializers.CharField(max_length=40), allow_empty=False, max_length=50
    )
    train = serializers.ListField(
        child=serializers.CharField(max_length=40), allow_empty=False, max_length=50
    )
    holdout = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=50)


def _session_files(request: Request, user: User) -> tuple[dict[str, list[Any]], list[Any]]:
    """Completed upload sessions (ids per role), in the order given; table names come from their file names."""
    data = SetFromUploadsSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    ids = {role: list(data.validated_data.get(role) or []) for role in ("synthetic", "train", "holdout")}
    sessions = upload_sessions.completed_uploads(user, [*ids["synthetic"], *ids["train"], *ids["holdout"]])
    files: dict[str, list[Any]] = {}
    start = 0
    for role in ("synthetic", "train", "holdout"):
        files[role] = sessions[start : start + len(ids[role])]
        start += len(ids[role])
    return files, sessions


def create_relational(request: Request, product: Product, user: User) -> Response:
    """Create (and by default submit) a relational version from the multipart request."""
    version: ProductVersion | None = None
    sessions: list[upload_sessions.SessionUploadedFile] = []
    try:
        if request.content_type.startswith("application/json"):
            files, sessions = _session_files(request, user)
        else:
            raise_upload_error(request._request)
            files = {role: list(request.FILES.getlist(role)) for role in ("synthetic", "train", "holdout")}
        version = relational.create_relational_version(
            product,
            user=user,
            synthetic=files["synthetic"],
            train=files["train"],
            holdout=files["holdout"],
            metadata=relational.parse_metadata_text(request.data.get("metadata")),
            changelog=str(request.data.get("changelog") or ""),
        )
        upload_sessions.mark_attached(sessions)
        if _flag(request.data.get("submit"), True):
            version = submission.submit_version(version, user=user)
    except services.CatalogError:
        if version is not None and version.status == "draft":
            services.delete_draft(version, user=user)
        raise
    return Response(VersionOutputSerializer(version, context={"show_reference": True}).data, status=201)


class MetadataInputSerializer(serializers.Serializer):
    metadata = serializers.JSONField()


class VersionMetadata(APIView):
    """Confirm or correct a relational draft's SDV multi-table metadata (tables, keys, sdtypes)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=MetadataInputSerializer, responses=VersionOutputSerializer)
    def put(self, request: Request, slug: str, number: int) -> Response:
        product = get_object_or_404(Product, slug=slug)
        user = signed_in_user(request)
        services.ensure_can_manage(user, product)
        version = get_object_or_404(ProductVersion, product=product, number=number)
        data = MetadataInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        metadata = relational.parse_metadata_text(data.validated_data["metadata"]) or {}
        version = relational.confirm_metadata(version, metadata, user=user)
        return Response(VersionOutputSerializer(version, context={"show_reference": True}).data)

    @extend_schema(responses={200: MetadataInputSerializer})
    def get(self, request: Request, slug: str, number: int) -> Response:
        product = get_object_or_404(Product, slug=slug)
        services.ensure_can_manage(signed_in_user(request), product)
        version = get_object_or_404(ProductVersion, product=product, number=number)
        return Response({"metadata": version.sdv_metadata})
