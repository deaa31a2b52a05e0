"""REST API: jobs, certificates, verification."""

from __future__ import annotations

import json
import tempfile
from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.catalog import selectors as catalog_selectors
from marketplace.certification import keys, signing
from marketplace.certification.delivered import check_file
from marketplace.certification.models import Certificate, Job
from marketplace.core.api import ApiError
from marketplace.core.schema import ERRORS, SIGNED_DOCUMENT


class JobSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="version.product.slug")
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "product",
            "version",
            "status",
            "stage",
            "progress",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JobDetail(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = get_object_or_404(Job.objects.select_related("version__product__organization"), pk=job_id)
        if not catalog_selectors.can_manage(request.user, job.version.product):
            raise ApiError("Not found.", "not_found", 404)
        return Response(JobSerializer(job).data)


class CertificateDetail(APIView):
    """The signed certificate JSON, exactly as signed. `?as=jcs` returns the signed canonical bytes (without the signature)."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["jcs"], required=False)],
        responses={200: SIGNED_DOCUMENT, **ERRORS},
    )
    def get(self, request: Request, certificate_id: str) -> Any:
        certificate = get_object_or_404(
            Certificate.objects.select_related("version__product"), pk=certificate_id
        )
        product = certificate.version.product
        if not (product.is_listed or catalog_selectors.can_manage(request.user, product)):
            raise ApiError("Not found.", "not_found", 404)
        if request.query_params.get("as") == "jcs":
            return HttpResponse(bytes(certificate.signed_bytes), content_type="application/octet-stream")
        # The exact canonical bytes (RFC 8785), so the served text verifies with openssl as well.
        response = HttpResponse(signing.document_bytes(certificate.document), content_type="application/json")
        revocation = getattr(certificate, "revocation", None)
        response["Synthex-Certificate-Status"] = "revoked" if revocation else "valid"
        return response


class CertificateStatusOutput(serializers.Serializer):
    certificate_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["valid", "revoked"])


class CertificateStatus(APIView):
    """``{"certificate_id", "status": "valid"}``, or the signed revocation document of a revoked one."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: CertificateStatusOutput, **ERRORS})
    def get(self, request: Request, certificate_id: str) -> Response:
        certificate = get_object_or_404(Certificate, pk=certificate_id)
        revocation = getattr(certificate, "revocation", None)
        if revocation is None:
            return Response({"certificate_id": certificate.id, "status": "valid"})
        return Response(revocation.document)


# JSON: `certificate` as an object; multipart: `certificate` as a file and any `data` files to check.
CERTIFICATE_VERIFY_REQUEST = {
    "application/json": {
        "type": "object",
        "properties": {"certificate": {"type": "object", "description": "The signed certificate."}},
        "required": ["certificate"],
    },
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "certificate": {"type": "string", "format": "binary"},
            "data": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
        "required": ["certificate"],
    },
}


class VerifiedFileOutput(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    matches = serializers.BooleanField()
    artifact = serializers.CharField(allow_null=True)
    delivery = serializers.JSONField(
        allow_null=True, help_text="The delivery receipt body of a buyer's copy."
    )


class CertificateVerifyOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    signature_valid = serializers.BooleanField()
    key_id = serializers.CharField(allow_null=True)
    revoked = serializers.BooleanField()
    files = VerifiedFileOutput(many=True)
    reasons = serializers.ListField(child=serializers.CharField())


class CertificateVerify(APIView):
    """Verify a certificate (JSON body `certificate`, or multipart `certificate` file) and optionally files
    (multipart `data`): the signature against the published keys, and each file's SHA-256 — an artifact, or
    a buyer's delivered copy found by its hash (`delivery`: its signed receipt body, checked)."""

    permission_classes = [AllowAny]
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request=CERTIFICATE_VERIFY_REQUEST,
        responses={200: CertificateVerifyOutput, 413: ERRORS[400], **ERRORS},
    )
    def post(self, request: Request) -> Response:
        document = _posted_certificate(request)
        result = signing.verify_certificate_signature(document, keys.keys_document())
        reasons = list(result.reasons)
        files = []
        for upload in request.FILES.getlist("data"):
            checked, refusals = _checked_upload(document, upload)
            files.append(checked)
            reasons.extend(refusals)
        revoked = Certificate.objects.filter(pk=document.get("id"), revocation__isnull=False).exists()
        if revoked:
            reasons.append("This certificate has been revoked by Synthex.")
        ok = result.ok and all(f["matches"] for f in files) and not revoked
        return Response(
            {
                "valid": ok,
                "signature_valid": result.ok,
                "key_id": result.key_id,
                "revoked": revoked,
                "files": files,
                "reasons": reasons,
            }
        )


def _posted_certificate(request: Request) -> dict[str, Any]:
    """The certificate sent as a JSON member or a file (at most 5 MiB), as a JSON object; ApiError otherwise."""
    if not hasattr(request.data, "get"):
        raise ApiError("Send an object with a 'certificate' member (or a multipart form).", "bad_request")
    raw = request.data.get("certificate")
    if raw is None:
        raise ApiError("Send the certificate as 'certificate' (JSON object or file).", "missing_certificate")
    if hasattr(raw, "read"):
        raw = raw.read(5 * 1024 * 1024 + 1)
        if len(raw) > 5 * 1024 * 1024:
            raise ApiError("That certificate is too large.", "too_large", 413)
    if isinstance(raw, (bytes, str)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("The certificate is not valid JSON.", "bad_certificate") from None
    if not isinstance(raw, dict):
        raise ApiError("The certificate must be a JSON object.", "bad_certificate")
    return raw


def _checked_upload(document: dict[str, Any], upload: Any) -> tuple[dict[str, Any], list[str]]:
    """One sent data file checked against ``document``: its output row and the reasons it fails (none when
    it matches an artifact or a delivered copy)."""
    with tempfile.NamedTemporaryFile() as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        check = check_file(document, copy.name, name=upload.name or "data")
    checked = {
        "name": upload.name,
        "sha256": check.sha256,
        "matches": check.ok,
        "artifact": check.artifact_name,
        # A buyer's copy is recognised by its own hash: its signed delivery receipt.
        "delivery": check.delivery,
    }
    if check.ok:
        return checked, []
    return checked, list(
        check.reasons or (f"{upload.name}: its SHA-256 matches no artifact of this certificate.",)
    )
