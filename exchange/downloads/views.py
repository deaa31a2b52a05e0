"""The buyer's library page: entitlements, versions, files, formats, receipts, update notices, curl lines."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from exchange.delivery.models import Entitlement
from exchange.delivery.selectors import entitlements_of
from exchange.downloads import selectors, services
from exchange.downloads.constants import FORMATS
from exchange.downloads.models import Delivery, Download
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import FileRole


@login_required
def library(request: HttpRequest) -> HttpResponse:
    rows: list[dict[str, Any]] = []
    for entitlement in entitlements_of(request.user):  # type: ignore[arg-type]
        license_ = LICENSES.get(entitlement.license_code)
        versions = (
            selectors.accessible_versions(entitlement) if entitlement.is_active else [entitlement.version]
        )
        newer = selectors.newer_versions(entitlement)
        included = {version.pk for version in versions}
        files = []
        for version in versions:
            for version_file in version.files.filter(role=FileRole.SYNTHETIC).order_by("table_name"):
                deliveries = Delivery.objects.filter(entitlement=entitlement, version_file=version_file)
                files.append(
                    {
                        "version": version,
                        "file": version_file,
                        "left": selectors.downloads_left(entitlement, version_file),
                        "deliveries": list(deliveries),
                        "curl": {
                            fmt: request.build_absolute_uri(
                                reverse("api-entitlement-file", args=[entitlement.id, version_file.pk, fmt])
                            )
                            for fmt in FORMATS
                        },
                    }
                )
        rows.append(
            {
                "entitlement": entitlement,
                "license": license_,
                "files": files,
                "sets": [
                    {
                        "version": version,
                        "deliveries": list(Delivery.objects.filter(entitlement=entitlement, version=version)),
                    }
                    for version in versions
                    if isinstance(version.sdv_metadata, dict)
                    and isinstance(version.sdv_metadata.get("tables"), dict)
                ],
                "updates_included": [version for version in newer if version.pk in included],
                "updates_excluded": [version for version in newer if version.pk not in included],
                "downloads": Download.objects.filter(
                    delivery__entitlement=entitlement, outcome=Download.Outcome.SERVED
                ).count(),
            }
        )
    return render(
        request,
        "downloads/library.html",
        {"rows": rows, "formats": FORMATS, "limit_note": selectors.download_limit},
    )


@login_required
@require_POST
def download(request: HttpRequest, entitlement_id: str, file_id: int, fmt: str) -> HttpResponse:
    """Form button: make (or reuse) the copy, issue a link, and send the browser to it."""
    entitlement = get_object_or_404(Entitlement, pk=entitlement_id, buyer=request.user)
    try:
        version_file = services.deliverable_file(entitlement, file_id)
        delivery = services.prepare_delivery(entitlement, version_file, fmt)
    except services.DeliveryError as error:
        services.record_download(outcome=Download.Outcome.REFUSED, reason=error.code, user=request.user)  # type: ignore[arg-type]
        messages.error(request, error.message)
        return redirect("downloads:library")
    link = services.issue_link(delivery, request.user)  # type: ignore[arg-type]
    return HttpResponseRedirect(reverse("api-download", args=[link.token]))


@login_required
@require_POST
def download_set(request: HttpRequest, entitlement_id: str, number: int, fmt: str) -> HttpResponse:
    """Form button: make (or reuse) the copy of a whole relational version (one zip), then go to its link."""
    from exchange.downloads import sets

    entitlement = get_object_or_404(Entitlement, pk=entitlement_id, buyer=request.user)
    try:
        if fmt not in FORMATS:
            raise services.DeliveryError(
                "invalid_format", f"Unknown format {fmt!r}; use csv, parquet or jsonl.", 400
            )
        delivery = sets.prepare_set_delivery(entitlement, sets.deliverable_set(entitlement, number), fmt)
    except services.DeliveryError as error:
        services.record_download(outcome=Download.Outcome.REFUSED, reason=error.code, user=request.user)  # type: ignore[arg-type]
        messages.error(request, error.message)
        return redirect("downloads:library")
    link = services.issue_link(delivery, request.user)  # type: ignore[arg-type]
    return HttpResponseRedirect(reverse("api-download", args=[link.token]))


@login_required
def receipt(request: HttpRequest, delivery_id: str) -> JsonResponse:
    delivery = get_object_or_404(Delivery, pk=delivery_id, entitlement__buyer=request.user)
    response = JsonResponse(delivery.receipt)
    response["Content-Disposition"] = f'attachment; filename="{delivery.id}.receipt.json"'
    return response
