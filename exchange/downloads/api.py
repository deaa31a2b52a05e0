"""Download API: links (``POST /api/v1/entitlements/{id}/links/``), direct file routes, the signed download
route itself, and delivery receipts. Every attempt on a link, served or refused, is logged to the ledger."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any, BinaryIO, NoReturn, cast

from django.http import FileResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from exchange.delivery.models import Entitlement
from exchange.downloads import authorization, services
from exchange.downloads.constants import CONTENT_TYPES, FORMATS, SET_CONTENT_TYPE
from exchange.downloads.models import Delivery, Download
from marketplace.accounts.models import User
from marketplace.core.api import ApiError
from marketplace.core.errors import JsonableError
from marketplace.core.schema import BINARY, ERRORS, SIGNED_DOCUMENT

STREAM_CHUNK_BYTES = 256 * 1024


class DownloadThrottle(ScopedRateThrottle):
    """The ``downloads`` scope of ``DEFAULT_THROTTLE_RATES``, read at request time (so settings overrides
    in tests and deployments apply without a restart of the class)."""

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate else None


class ThrottledDownloads(APIView):
    throttle_classes = [DownloadThrottle]
    throttle_scope = "downloads"

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        """Log one ``download.refused`` (reason throttled) per client and minute, then answer 429."""
        user = _user_or_none(request)
        ident = str(user.pk) if user else DownloadThrottle().get_ident(request)
        window = int(time.time() // 60)
        key = "dl_thr_" + hashlib.sha256(f"{ident}:{window}".encode()).hexdigest()[:24]
        services.record_download(
            outcome=Download.Outcome.REFUSED, reason="throttled", user=user, idempotency_key=key
        )
        super().throttled(request, wait)  # type: ignore[arg-type]  # DRF accepts None: no Retry-After


def _user_or_none(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


class LinkInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    file = serializers.IntegerField(required=False, min_value=1)
    draw = serializers.CharField(required=False, max_length=40)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "file" in attrs and "draw" in attrs:
            raise serializers.ValidationError("Give a file or a draw, not both.")
        return attrs


def _own_entitlement(request: Request, entitlement_id: str) -> Entitlement:
    return get_object_or_404(
        Entitlement.objects.select_related("version__product"), pk=entitlement_id, buyer=request.user
    )


def _prepare(
    request: Request, entitlement: Entitlement, file_id: int | None, fmt: str, draw_id: str | None = None
) -> Delivery:
    try:
        if draw_id is not None:
            draw = services.deliverable_draw(entitlement, draw_id)
            return services.prepare_draw_delivery(entitlement, draw, fmt)
        version_file = services.deliverable_file(entitlement, file_id)
        return services.prepare_delivery(entitlement, version_file, fmt)
    except services.DeliveryError as error:
        services.record_download(
            outcome=Download.Outcome.REFUSED, reason=error.code, user=_user_or_none(request)
        )
        raise


def link_payload(request: Request, delivery: Delivery, link: services.Link) -> dict[str, Any]:
    return {
        "url": request.build_absolute_uri(reverse("api-download", args=[link.token])),
        "expires_at": link.expires_at.isoformat().replace("+00:00", "Z"),
        "format": delivery.format,
        "file": delivery.version_file_id,
        "draw": delivery.draw_id,
        "filename": delivery.filename,
        "delivery": delivery.id,
        "sha256": delivery.sha256,
        "blake3": delivery.blake3 or None,
        "size_bytes": delivery.size_bytes,
        "rows": delivery.rows,
        "receipt_url": request.build_absolute_uri(reverse("api-delivery-receipt", args=[delivery.id])),
    }


class LinkOutput(serializers.Serializer):
    """A signed link to the buyer's own copy (the fields of :func:`link_payload`)."""

    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    format = serializers.ChoiceField(choices=FORMATS)
    file = serializers.IntegerField(allow_null=True)
    draw = serializers.CharField(allow_null=True)
    filename = serializers.CharField()
    delivery = serializers.CharField()
    sha256 = serializers.CharField()
    blake3 = serializers.CharField(allow_null=True)
    size_bytes = serializers.IntegerField()
    rows = serializers.IntegerField(allow_null=True)
    receipt_url = serializers.URLField()


REDIRECT_TO_LINK = OpenApiResponse(description="Redirect (Location) to a fresh signed download link.")


class EntitlementLinks(ThrottledDownloads):
    """``POST {format, file? | draw?}`` → a signed link to the buyer's fingerprinted copy of a catalog file or
    of one of the entitlement's succeeded generator draws, valid 15 minutes."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=LinkInput, responses={201: LinkOutput, 429: ERRORS[400], **ERRORS})
    def post(self, request: Request, entitlement_id: str) -> Response:
        entitlement = _own_entitlement(request, entitlement_id)
        data = LinkInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        delivery = _prepare(request, entitlement, values.get("file"), values["format"], values.get("draw"))
        link = services.issue_link(delivery, request.user)  # type: ignore[arg-type]
        return Response(link_payload(request, delivery, link), status=201)


class EntitlementFile(ThrottledDownloads):
    """``GET entitlements/{id}/files/{file}.{format}`` → 302 to a fresh signed link (one line for curl -L)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={302: REDIRECT_TO_LINK, 200: BINARY, **ERRORS})
    def get(self, request: Request, entitlement_id: str, file_id: int, fmt: str) -> HttpResponseRedirect:
        entitlement = _own_entitlement(request, entitlement_id)
        if fmt not in FORMATS:
            raise ApiError(f"Unknown format {fmt!r}; use csv, parquet or jsonl.", "invalid_format", 400)
        delivery = _prepare(request, entitlement, file_id, fmt)
        link = services.issue_link(delivery, request.user)  # type: ignore[arg-type]
        return HttpResponseRedirect(reverse("api-download", args=[link.token]))


class FileRange(io.RawIOBase):
    """Bytes ``start`` to ``start + length`` of an open file, for a ``FileResponse`` of a Range request.

    The server's ``sendfile`` path (gunicorn's ``wsgi.file_wrapper``) sends ``Content-Length`` bytes from
    the descriptor's current offset, so ranges leave the kernel's page cache for the socket without passing
    through Python (constant memory, and 50 parallel ranged downloads cost no buffers); servers without
    ``sendfile`` read the range through :meth:`readinto`, which stops at its end.
    """

    def __init__(self, handle: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._handle = handle
        self._left = length
        handle.seek(start)

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._handle.fileno()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # Django (measuring) and socket.sendfile (after sending) move the file and put it back; reads still
        # end at the range's end, which only ``readinto`` counts.
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        if not view:
            return 0
        count = self._handle.readinto(view)  # type: ignore[attr-defined]
        self._left -= count or 0
        return count or 0

    def close(self) -> None:
        try:
            self._handle.close()
        finally:
            super().close()


def refuse(request: Request, error: services.DeliveryError, delivery: Delivery | None = None) -> NoReturn:
    """Log a refused download attempt (``download.refused``) and raise the error (the API answers it)."""
    authorization.refuse(error, user=_user_or_none(request), delivery=delivery)


def serve_delivery(view: APIView, request: Request, delivery: Delivery) -> Any:
    """Serve a delivered copy to its signed-in buyer as ``authorization.authorize_download`` decides (the
    attempt logged as ``download`` or ``download.refused``): streamed (filesystem, with Range / If-Range) or
    redirected to a presigned URL (S3). The caller has checked who is asking."""
    decision = authorization.authorize_download(
        delivery,
        user=_user_or_none(request),
        range_header=request.headers.get("Range", ""),
        if_range=request.headers.get("If-Range"),
    )
    if not decision.is_satisfiable:
        refusal = JsonableError(
            "range_not_satisfiable",
            f"The range starts beyond the end of the file ({decision.size} bytes).",
            416,
        )
        response = view.handle_exception(refusal)
        response["Content-Range"] = f"bytes */{decision.size}"
        return response
    disposition = f'attachment; filename="{delivery.filename}"'
    store = services.storage()
    if not decision.is_streamed:
        url = store.url(  # type: ignore[call-arg]
            delivery.storage_name,
            parameters={"ResponseContentDisposition": disposition},
            expire=services.presigned_seconds(),
        )
        return HttpResponseRedirect(url)
    served = _streamed(store.open(delivery.storage_name, "rb"), decision)
    served["Content-Type"] = SET_CONTENT_TYPE if delivery.is_table_set else CONTENT_TYPES[delivery.format]
    served["Content-Disposition"] = disposition
    served["Accept-Ranges"] = "bytes"
    served["ETag"] = f'"{delivery.sha256}"'
    served["Cache-Control"] = "private, no-store"
    return served


def _streamed(handle: Any, decision: authorization.DownloadDecision) -> HttpResponseBase:
    """The whole copy, or the decided range of it (206), read from ``handle`` in large blocks."""
    start, end = decision.start, decision.end
    if decision.is_partial:
        ranged = FileResponse(FileRange(cast(BinaryIO, handle), start, end - start + 1), status=206)
        ranged.block_size = STREAM_CHUNK_BYTES
        ranged["Content-Range"] = f"bytes {start}-{end}/{decision.size}"
        ranged["Content-Length"] = str(end - start + 1)
        return ranged
    whole = FileResponse(handle)
    whole.block_size = STREAM_CHUNK_BYTES
    whole["Content-Length"] = str(decision.size)
    return whole


class DownloadFile(ThrottledDownloads):
    """``GET downloads/{token}/``: the signed link. Checks signature, expiry and buyer, then
    :func:`serve_delivery` (entitlement, limits, storage, ledger, Range or presigned redirect)."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: BINARY,
            206: OpenApiResponse(BINARY.response, description="The requested byte range."),
            302: OpenApiResponse(description="On S3: redirect to a presigned URL of the copy."),
            **ERRORS,
        }
    )
    def get(self, request: Request, token: str) -> Any:
        try:
            claims = services.read_link(token)
        except services.DeliveryError as error:
            refuse(request, error)
        delivery = (
            Delivery.objects.select_related("entitlement", "version_file", "draw")
            .filter(pk=claims.delivery_id)
            .first()
        )
        if delivery is None:
            refuse(request, services.DeliveryError("forged_link", "This download link is not valid.", 403))
        if not request.user.is_authenticated:
            refuse(
                request,
                services.DeliveryError(
                    "not_authenticated", "Sign in (or send your API token) to use this link.", 401
                ),
                delivery,
            )
        if request.user.pk != claims.buyer_id or delivery.entitlement.buyer_id != request.user.pk:
            refuse(
                request,
                services.DeliveryError("wrong_buyer", "This link belongs to another buyer.", 403),
                delivery,
            )
        return serve_delivery(self, request, delivery)


class DeliveryReceipt(APIView):
    """``GET deliveries/{id}/receipt/``: the signed receipt of one delivered copy (its buyer only)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: SIGNED_DOCUMENT, **ERRORS})
    def get(self, request: Request, delivery_id: str) -> Response:
        delivery = get_object_or_404(Delivery, pk=delivery_id, entitlement__buyer=request.user)
        response = Response(delivery.receipt)
        response["Content-Disposition"] = f'inline; filename="{delivery.id}.receipt.json"'
        return response
