"""The provider's form behind the generator panel: fit on the platform or upload a synthesizer."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from marketplace.catalog.models import Product
from marketplace.catalog.uploads import upload_error
from marketplace.core.auth import signed_in_user
from marketplace.generators import engines, native
from marketplace.generators.errors import GeneratorError
from marketplace.generators.services import setup


def _json_field(request: HttpRequest, name: str) -> Any:
    text = request.POST.get(name, "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise GeneratorError("bad_json", f"{name.replace('_', ' ').capitalize()} must be JSON.") from None


@login_required
@require_POST
def generator_create(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug)
    user = signed_in_user(request)
    problem = upload_error(request)
    try:
        if problem is not None:
            raise GeneratorError(problem.code, problem.message)
        common = {
            "user": user,
            "target_column": request.POST.get("target", "").strip(),
            "row_quotas": _json_field(request, "row_quotas"),
        }
        if request.POST.get("mode") == "upload":
            if "model" not in request.FILES or "train" not in request.FILES:
                raise GeneratorError("missing_file", "Choose the synthesizer file and the train rows.")
            setup.create_uploaded_generator(
                product,
                model_file=request.FILES["model"],  # type: ignore[arg-type]  # hashed by the upload handler
                train=request.FILES["train"],  # type: ignore[arg-type]
                holdout=request.FILES.get("holdout"),  # type: ignore[arg-type]
                **common,
            )
        elif engines.is_native(request.POST.get("synthesizer", "")):
            if "data" not in request.FILES:
                raise GeneratorError("missing_file", "Choose the file of real rows to fit on.")
            native.create_native_generator(
                product,
                data=request.FILES["data"],  # type: ignore[arg-type]  # hashed by the upload handler
                synthesizer=request.POST.get("synthesizer", ""),
                epsilon=request.POST.get("epsilon", "").strip() or None,
                delta=request.POST.get("delta", "").strip() or None,
                epsilon_total=request.POST.get("epsilon_total", "").strip() or None,
                public_domain=_json_field(request, "public_domain"),
                **common,
            )
        else:
            if "data" not in request.FILES:
                raise GeneratorError("missing_file", "Choose the file of real rows to fit on.")
            epochs = request.POST.get("epochs", "").strip()
            setup.create_fitted_generator(
                product,
                data=request.FILES["data"],  # type: ignore[arg-type]
                synthesizer=request.POST.get("synthesizer", ""),
                epochs=int(epochs) if epochs.isdigit() else None,
                constraints=_json_field(request, "constraints"),
                enforce_rules=request.POST.get("enforce_rules") == "1",
                **common,
            )
    except GeneratorError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Generator received: its fit and certification are running.")
    return redirect("catalog:product_detail", slug=product.slug)
