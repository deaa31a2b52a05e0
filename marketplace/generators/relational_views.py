"""The provider's form for an HMA generator on related tables (the generator panel of the product page)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from marketplace.catalog.models import Product
from marketplace.catalog.uploads import upload_error
from marketplace.core.auth import signed_in_user
from marketplace.generators import relational
from marketplace.generators.errors import GeneratorError


def _json_field(request: HttpRequest, name: str, label: str) -> object:
    text = request.POST.get(name, "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise GeneratorError("bad_json", f"{label} must be JSON.") from None


@login_required
@require_POST
def hma_generator_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Fit HMA on the uploaded tables; the product page then shows the fit's progress."""
    product = get_object_or_404(Product, slug=slug)
    user = signed_in_user(request)
    problem = upload_error(request)
    try:
        if problem is not None:
            raise GeneratorError(problem.code, problem.message)
        metadata = _json_field(request, "metadata", "The metadata")
        quotas = _json_field(request, "row_quotas", "Rows per license")
        if metadata is not None and not isinstance(metadata, dict):
            raise GeneratorError("bad_metadata", "The metadata must be a JSON object.")
        if quotas is not None and not isinstance(quotas, dict):
            raise GeneratorError("bad_quota", "Rows per license must be a JSON object.")
        relational.create_hma_generator(
            product,
            user=user,
            tables=request.FILES.getlist("tables"),  # type: ignore[arg-type]  # hashed by the upload handler
            metadata=metadata,
            row_quotas=quotas,
        )
    except GeneratorError as error:
        messages.error(request, error.message)
        for problem_item in error.extra.get("problems", [])[:10]:
            messages.error(request, problem_item.get("message", ""))
    else:
        messages.success(request, "Tables received: the HMA fit and its certification are running.")
    return redirect("catalog:product_detail", slug=product.slug)
