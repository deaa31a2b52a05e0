from __future__ import annotations

import json
import tempfile
from typing import Any

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from marketplace.catalog import selectors as catalog_selectors
from marketplace.catalog.models import Product, ProductVersion
from marketplace.certification import keys, selectors, services, signing
from marketplace.certification.delivered import check_file
from marketplace.certification.models import Certificate, Job

MAX_CERTIFICATE_BYTES = 5 * 1024 * 1024


def _visible(request: HttpRequest, certificate_id: str) -> Certificate:
    certificate = get_object_or_404(
        Certificate.objects.select_related("version__product__organization"), pk=certificate_id
    )
    product = certificate.version.product
    if not (product.is_listed or catalog_selectors.can_manage(request.user, product)):
        raise Http404("No such certificate.")
    return certificate


def certificate_detail(request: HttpRequest, certificate_id: str) -> HttpResponse:
    certificate = _visible(request, certificate_id)
    charts = selectors.chart_figures(certificate)
    # A certificate issued before charts were drawn at issue time: queue the drawing once per ten minutes.
    if (
        charts is None
        and certificate.document.get("charts")
        and cache.add(f"charts-queued:{certificate.id}", 1, 600)
    ):
        services.schedule_chart_rendering(certificate.id)
    return render(
        request,
        # A set of related tables (issue 20) has its own page: per-table grades, keys and entities.
        "certification/certificate_relational.html"
        if "relational" in certificate.document
        else "certification/certificate.html",
        {
            "certificate": certificate,
            "doc": certificate.document,
            "charts": charts,
            "product": certificate.version.product,
            "version": certificate.version,
            "revocation": getattr(certificate, "revocation", None),
        },
    )


def certificate_json(request: HttpRequest, certificate_id: str) -> HttpResponse:
    certificate = _visible(request, certificate_id)
    # Served as the compact canonical bytes: the openssl recipe cuts the signed bytes out of this text.
    response = HttpResponse(signing.document_bytes(certificate.document), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{certificate.id}.json"'
    return response


def certificate_jcs(request: HttpRequest, certificate_id: str) -> HttpResponse:
    certificate = _visible(request, certificate_id)
    response = HttpResponse(bytes(certificate.signed_bytes), content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{certificate.id}.jcs"'
    return response


def job_status(request: HttpRequest, slug: str, number: int) -> JsonResponse:
    """Polled by the product page while a version certifies."""
    product = get_object_or_404(Product, slug=slug)
    if not catalog_selectors.can_manage(request.user, product):
        raise Http404("No such job.")
    version = get_object_or_404(ProductVersion, product=product, number=number)
    job = selectors.latest_job(version)
    if job is None:
        raise Http404("No job for this version.")
    certificate = selectors.latest_certificate(version)
    return JsonResponse(
        {
            "status": job.status,
            "stage": job.stage,
            "progress": job.progress,
            "error": job.error,
            "done": job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED),
            "certificate": certificate.id if certificate else None,
        }
    )


def verify_page(request: HttpRequest) -> HttpResponse:
    """A buyer drops a certificate and, optionally, data files; we check signature and hashes."""
    context: dict[str, object] = {}
    status = 200
    if request.method == "POST":
        document, error = _dropped_certificate(request)
        if error:
            context["error"] = error
        if document is not None:
            context.update(_verification(request, document))
        if "error" in context:
            status = 400
    return render(request, "certification/verify.html", context, status=status)


def _dropped_certificate(request: HttpRequest) -> tuple[dict | None, str]:
    """The dropped certificate as a JSON object, or None and the reason it was refused."""
    upload = request.FILES.get("certificate")
    if upload is None:
        return None, "Choose the certificate file (the .json you downloaded)."
    if (upload.size or 0) > MAX_CERTIFICATE_BYTES:
        return None, "That file is too large to be a certificate."
    try:
        parsed = json.loads(upload.read())
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed, ""
    return None, "That file is not a certificate (not a JSON object)."


def _dropped_receipt(request: HttpRequest) -> Any:
    """The dropped receipt (parsed JSON; ``{}`` when unreadable), or None when none or too large."""
    receipt_upload = request.FILES.get("receipt")
    if receipt_upload is None or (receipt_upload.size or 0) > MAX_CERTIFICATE_BYTES:
        return None
    try:
        return json.loads(receipt_upload.read())
    except ValueError:
        return {}


def _verification(request: HttpRequest, document: dict) -> dict[str, object]:
    """The page's verdict on ``document``: its signature, each dropped data file's hash, revocation."""
    result = signing.verify_certificate_signature(document, keys.keys_document())
    receipt = _dropped_receipt(request)
    files = []
    for data in request.FILES.getlist("data"):
        with tempfile.NamedTemporaryFile() as copy:
            for chunk in data.chunks():
                copy.write(chunk)
            copy.flush()
            # A buyer's copy is found by its own hash: no receipt needed (one given is used).
            files.append(
                (data.name, check_file(document, copy.name, name=data.name or "upload", receipt=receipt))
            )
    revoked = Certificate.objects.filter(pk=document.get("id"), revocation__isnull=False).exists()
    return {
        "result": result,
        "files": files,
        "revoked": revoked,
        "doc": document,
        "valid": result.ok and not revoked and all(m.ok for _, m in files),
    }
