from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from marketplace.catalog import relational, relational_views, schema_diagram, selectors, services
from marketplace.catalog.forms import ProductEditForm, ProductForm, VersionUploadForm
from marketplace.catalog.ingest import IngestError
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import (
    Domain,
    FileRole,
    Product,
    ProductVersion,
    VersionFile,
    VersionStatus,
)
from marketplace.catalog.uploads import upload_error
from marketplace.certification import submission
from marketplace.certification.plausibility import (
    RuleChoicesRefused,
    check_rule_choices,
    checked_against_reference,
    reference_rules,
)
from marketplace.core.auth import signed_in_user
from marketplace.core.page_cache import anonymous_page_cache

SDTYPES = ("numerical", "categorical", "boolean", "datetime", "id")


@anonymous_page_cache
def home(request: HttpRequest) -> HttpResponse:
    query = selectors.CatalogQuery.from_params(request.GET, prices_in_major_units=True)
    results = selectors.search_products(query)
    page = Paginator(results, 12).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "catalog/home.html",
        {
            "query": query,
            "page": page,
            "facets": selectors.facet_counts(query),
            "domains": Domain.choices,
            "orderings": selectors.ORDERINGS,
            "querystring": params.urlencode(),
        },
    )


@anonymous_page_cache
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product.objects.select_related("organization"), slug=slug)
    can_manage = selectors.can_manage(request.user, product)
    if not (product.is_listed or can_manage):
        raise PermissionDenied("This product is not listed.")
    versions = list(selectors.visible_versions(product, request.user).prefetch_related("files"))
    on_sale = selectors.version_on_sale(product)
    number = request.GET.get("version")
    version = next((v for v in versions if str(v.number) == number), None) if number else None
    if version is None:
        version = selectors.default_version(versions, on_sale)
    # Members see what is newer than the version on sale (a draft, a run in progress, a failure) apart.
    newer = [v for v in versions if v.number > on_sale.number] if (can_manage and on_sale) else []
    synthetic = [f for f in version.files.all() if f.role == FileRole.SYNTHETIC] if version else []
    reference = [f for f in version.files.all() if f.is_reference] if (version and can_manage) else []
    return render(
        request,
        "catalog/product_detail.html",
        {
            "product": product,
            "versions": versions,
            "version": version,
            "version_on_sale": on_sale,
            "newer_versions": [v for v in newer if v != version],
            "reference_files": reference,
            "licenses": [(lic, LICENSES[lic.code]) for lic in product.licenses.all()],
            "can_manage": can_manage,
            **_tables_context(version, synthetic),
        },
    )


def _tables_context(version: ProductVersion | None, synthetic: list[VersionFile]) -> dict[str, object]:
    """The synthetic tables the page shows (their profiles and previews: synthetic rows only), each one's
    column sdtypes and key marks, and for a relational version the diagram of its tables and keys, the
    tables in the diagram's order."""
    if version is None or not relational.is_relational(version):
        columns = version.sdv_metadata.get("columns", {}) if version else {}
        return {
            "synthetic_files": synthetic,
            "column_specs": {f.table_name: columns for f in synthetic},
            "key_marks": {},
            "diagram": None,
        }
    metadata = version.sdv_metadata
    diagram = schema_diagram.layout(metadata)
    order = {box.name: index for index, box in enumerate(diagram.boxes)}
    return {
        "synthetic_files": sorted(
            synthetic, key=lambda f: (order.get(f.table_name, len(order)), f.table_name)
        ),
        "column_specs": {name: table.get("columns", {}) for name, table in metadata["tables"].items()},
        "key_marks": schema_diagram.key_marks(metadata),
        "diagram": diagram,
    }


@login_required
def product_create(request: HttpRequest) -> HttpResponse:
    if not signed_in_user(request).provider_organizations().exists():
        messages.info(request, "Create a provider organization first: products belong to organizations.")
        return redirect("accounts:profile")
    form = ProductForm(request.POST or None, user=signed_in_user(request))
    if request.method == "POST" and form.is_valid():
        try:
            product = services.create_product(
                user=signed_in_user(request),
                organization=form.cleaned_data["organization"],
                title=form.cleaned_data["title"],
                summary=form.cleaned_data["summary"],
                description_md=form.cleaned_data["description_md"],
                domain=form.cleaned_data["domain"],
                tags=form.tag_list(),
                licenses=form.licenses(),
            )
        except services.CatalogError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Product created. Now upload its first version.")
            return redirect("catalog:version_upload", slug=product.slug)
    return render(request, "catalog/product_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def product_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """The provider edits a product's description and license prices (major units, currency shown)."""
    product = get_object_or_404(Product, slug=slug)
    user = signed_in_user(request)
    services.ensure_can_manage(user, product)
    form = ProductEditForm(request.POST or None, user=user, product=product)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_product(
                product,
                user=user,
                title=form.cleaned_data["title"],
                summary=form.cleaned_data["summary"],
                description_md=form.cleaned_data["description_md"],
                domain=form.cleaned_data["domain"],
                tags=form.tag_list(),
                licenses=form.licenses(),
            )
        except services.CatalogError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Saved. New prices apply to orders from now on.")
            return redirect("catalog:product_detail", slug=product.slug)
    return render(
        request,
        "catalog/product_form.html",
        {"form": form, "product": product},
        status=400 if form.errors else 200,
    )


@login_required
def version_upload(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug)
    services.ensure_can_manage(signed_in_user(request), product)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if request.method != "POST":
        return render(
            request, "catalog/version_upload.html", {"product": product, "form": VersionUploadForm()}
        )
    error: IngestError | services.CatalogError | None = upload_error(request)
    form = VersionUploadForm(request.POST, request.FILES) if error is None else VersionUploadForm()
    version: ProductVersion | None = None
    status = 400
    if error is None and form.is_valid():
        try:
            version = services.create_version(
                product,
                user=signed_in_user(request),
                synthetic=form.cleaned_data["synthetic"],
                train=form.cleaned_data["train"],
                holdout=form.cleaned_data["holdout"],
                changelog=form.cleaned_data["changelog"],
            )
        except services.CatalogError as caught:
            error, status = caught, caught.status
    elif error is not None:
        status = 413 if error.code == "too_large" else 400
    if version is not None:
        url = reverse("catalog:version_confirm", args=[product.slug, version.number])
        if wants_json:
            return JsonResponse({"redirect": url, "version": version.number}, status=201)
        return redirect(url)
    message = (
        error.message
        if error is not None
        else " ".join(str(e) for errs in form.errors.values() for e in errs)
    )
    if wants_json:
        return JsonResponse({"detail": message, "code": getattr(error, "code", "invalid")}, status=status)
    if error is not None:
        form.add_error(None, error.message)
    return render(request, "catalog/version_upload.html", {"product": product, "form": form}, status=status)


@login_required
def version_confirm(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug)
    services.ensure_can_manage(signed_in_user(request), product)
    version = get_object_or_404(ProductVersion, product=product, number=number)
    if version.status != VersionStatus.DRAFT:
        return redirect(f"{reverse('catalog:product_detail', args=[slug])}?version={number}")
    if relational.is_relational(version):
        return relational_views.confirm_tables(request, product, version)
    files = list(version.files.all())
    synthetic = [f for f in files if f.role == FileRole.SYNTHETIC]
    columns = version.sdv_metadata.get("columns", {})
    missing_reference = selectors.missing_reference(version)
    error = ""
    if request.method == "POST" and "discard" not in request.POST and missing_reference:
        error = missing_reference
    elif request.method == "POST":
        if "discard" in request.POST:
            services.delete_draft(version, user=signed_in_user(request))
            messages.info(request, f"Draft version {number} discarded.")
            return redirect("catalog:product_detail", slug=slug)
        overrides = {
            name: request.POST.get(f"sdtype__{name}", spec.get("sdtype", ""))
            for name, spec in columns.items()
            if request.POST.get(f"sdtype__{name}", spec.get("sdtype")) != spec.get("sdtype")
        }
        try:
            choices = _rule_choices(request, version)
            submission.submit_version(
                version,
                user=signed_in_user(request),
                sdtype_overrides=overrides,
                target_column=request.POST.get("target", ""),
                rules=choices,
            )
        except (services.CatalogError, RuleChoicesRefused) as caught:
            error = getattr(caught, "message", str(caught))
        else:
            messages.success(request, f"Version {number} submitted for certification.")
            return redirect(f"{reverse('catalog:product_detail', args=[slug])}?version={number}")
    return render(
        request,
        "catalog/version_confirm.html",
        {
            "product": product,
            "version": version,
            "synthetic_files": synthetic,
            "reference_files": [f for f in files if f.is_reference],
            "columns": columns,
            "sdtypes": SDTYPES,
            "error": error,
            "missing_reference": missing_reference,
            **_rules_context(request, version),
        },
        status=400 if error else 200,
    )


def _rule_choices(request: HttpRequest, version: ProductVersion) -> dict[str, list]:
    """The confirm form's plausibility choices (dismissed rules with reasons, declared statements), checked
    against the version's reference rows."""
    choices = check_rule_choices(
        {
            "dismissed": [
                {"id": rule_id, "reason": request.POST.get(f"reason__{rule_id}", "")}
                for rule_id in request.POST.getlist("dismiss")
            ],
            "declared": [line for line in request.POST.get("declared", "").splitlines() if line.strip()],
        }
    )
    checked_against_reference(version, choices)
    return choices


def _rules_context(request: HttpRequest, version: ProductVersion) -> dict[str, object]:
    """The discovered rules for the confirm page, with the choices already made (or just posted)."""
    try:
        rules = reference_rules(version)
    except RuleChoicesRefused as error:
        return {"rules": [], "rules_error": str(error)}
    dismissed = {item["id"]: item["reason"] for item in version.rules.get("dismissed", [])}
    if request.method == "POST":
        dismissed = {
            rule_id: request.POST.get(f"reason__{rule_id}", "") for rule_id in request.POST.getlist("dismiss")
        }
    declared = (
        request.POST.get("declared")
        if request.method == "POST"
        else "\n".join(version.rules.get("declared", []))
    )
    return {
        "rules": [
            rule | {"dismissed": rule["id"] in dismissed, "reason": dismissed.get(rule["id"], "")}
            for rule in rules
        ],
        "declared_text": declared or "",
    }


@login_required
@require_POST
def reference_delete(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug)
    version = get_object_or_404(ProductVersion, product=product, number=number)
    count = services.delete_reference_data(version, user=signed_in_user(request))
    messages.success(request, f"Deleted {count} reference file(s) of version {number}.")
    return redirect(f"{reverse('catalog:product_detail', args=[slug])}?version={number}")
