"""The draw page: a buyer with an entitlement to a generator draws rows (rows, seed, conditions), follows
the draw's progress and downloads their copy of it (issue 17 #4). The work is the API's: ``request_sample``
queues the draw (quota checked under a lock, consumed only when it succeeds) and ``exchange.downloads``
makes the fingerprinted copy."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from exchange.delivery.models import Entitlement
from exchange.delivery.samples import quota_state, request_sample
from exchange.downloads import services as downloads
from exchange.downloads.constants import FORMATS
from exchange.downloads.models import Delivery, Download
from marketplace.core.auth import signed_in_user
from marketplace.core.errors import JsonableError
from marketplace.generators.models import GeneratorModel, SampleDraw


class FormError(Exception):
    """A field of the draw form that cannot be read; the message says which and why."""


def parse_conditions(text: str) -> dict[str, Any]:
    """``column=value`` lines (blank lines ignored) as a mapping; values are JSON when they parse (numbers,
    true/false), text otherwise. Raises FormError for a line without ``=``."""
    conditions: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        column, separator, raw = line.partition("=")
        if not separator or not column.strip():
            raise FormError(f"Write each condition as column=value ({line.strip()!r} is not).")
        try:
            conditions[column.strip()] = json.loads(raw.strip())
        except ValueError:
            conditions[column.strip()] = raw.strip()
    return conditions


def _whole_number(raw: str, name: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FormError(f"{name} must be a whole number.") from None


def _generator_entitlement(request: HttpRequest, entitlement_id: str) -> tuple[Entitlement, GeneratorModel]:
    entitlement = get_object_or_404(
        Entitlement.objects.select_related("version__product"),
        pk=entitlement_id,
        buyer=signed_in_user(request),
    )
    generator = get_object_or_404(GeneratorModel, version_id=entitlement.version_id)
    return entitlement, generator


@login_required
def draw_page(request: HttpRequest, entitlement_id: str) -> HttpResponse:
    """GET: the form, the quota left and the entitlement's draws. POST: queue a draw, then show it."""
    entitlement, generator = _generator_entitlement(request, entitlement_id)
    error, status = "", 200
    values = {"rows": "1000", "seed": "", "conditions": ""}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in values}
        try:
            rows = _whole_number(values["rows"], "Rows")
            draw = request_sample(
                entitlement.id,
                buyer=signed_in_user(request),
                rows=rows,
                seed=_whole_number(values["seed"], "The seed"),
                conditions=parse_conditions(values["conditions"]),
            )
        except FormError as caught:
            error, status = str(caught), 400
        except JsonableError as caught:
            error, status = caught.message, caught.status
        else:
            messages.success(request, f"Draw {draw.id} queued: {draw.rows:,} rows.")
            return redirect(f"{reverse('delivery:draw', args=[entitlement.id])}?draw={draw.id}")
    draws = list(SampleDraw.objects.filter(entitlement_id=entitlement.id).order_by("-created_at"))
    copies = Delivery.objects.filter(entitlement=entitlement, draw__in=draws)
    return render(
        request,
        "delivery/draw.html",
        {
            "entitlement": entitlement,
            "generator": generator,
            "quota": quota_state(entitlement) if generator.status == GeneratorModel.Status.READY else None,
            "columns": list(generator.sdv_metadata.get("columns", {})),
            "draws": draws,
            "copies": {copy.draw_id: copy for copy in copies if copy.format == "parquet"},
            "formats": FORMATS,
            "values": values,
            "error": error,
            "followed": request.GET.get("draw", ""),
        },
        status=status,
    )


@login_required
@require_POST
def draw_download(request: HttpRequest, entitlement_id: str, draw_id: str, fmt: str) -> HttpResponse:
    """Form button: make (or reuse) the buyer's copy of a succeeded draw, issue a link, go to it."""
    entitlement, _ = _generator_entitlement(request, entitlement_id)
    user = signed_in_user(request)
    try:
        delivery = downloads.prepare_draw_delivery(
            entitlement, downloads.deliverable_draw(entitlement, draw_id), fmt
        )
    except downloads.DeliveryError as error:
        downloads.record_download(outcome=Download.Outcome.REFUSED, reason=error.code, user=user)
        messages.error(request, error.message)
        return redirect("delivery:draw", entitlement_id=entitlement.id)
    link = downloads.issue_link(delivery, user)
    return HttpResponseRedirect(reverse("api-download", args=[link.token]))
