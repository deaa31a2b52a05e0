"""The confirm page of a relational draft (issue 20): tables, primary keys, foreign keys and sdtypes as
detected, corrected by the provider, checked against every stored set, then submitted."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from marketplace.catalog import relational, services
from marketplace.catalog.ingest.metadata import SDTYPES
from marketplace.catalog.models import FileRole, Product, ProductVersion
from marketplace.certification import submission
from marketplace.core.auth import signed_in_user


def _posted_metadata(post: QueryDict, metadata: dict[str, Any]) -> dict[str, Any]:
    """The detected metadata with the form's corrections: sdtypes, primary keys, kept and added keys."""
    corrected = copy.deepcopy(metadata)
    for name, table in corrected["tables"].items():
        for column, spec in table.get("columns", {}).items():
            chosen = post.get(f"sdtype__{name}__{column}")
            if chosen in SDTYPES and chosen != spec.get("sdtype"):
                table["columns"][column] = {"sdtype": chosen}
        key = post.get(f"primary_key__{name}")
        if key == "":
            table.pop("primary_key", None)
        elif key in table.get("columns", {}):
            table["primary_key"] = key
    kept = set(post.getlist("keep_relationship"))
    relationships = [r for index, r in enumerate(corrected.get("relationships", [])) if str(index) in kept]
    parent, child, column = (post.get(f"add_{part}", "").strip() for part in ("parent", "child", "column"))
    if parent and child and column:
        relationships.append(
            {
                "parent_table_name": parent,
                "parent_primary_key": corrected["tables"].get(parent, {}).get("primary_key", ""),
                "child_table_name": child,
                "child_foreign_key": column,
            }
        )
    corrected["relationships"] = relationships
    return corrected


def confirm_tables(request: HttpRequest, product: Product, version: ProductVersion) -> HttpResponse:
    """GET: the detected tables and keys; POST: confirm (or discard) and submit for certification."""
    user = signed_in_user(request)
    metadata = version.sdv_metadata
    error: str = ""
    problems: object = []
    if request.method == "POST" and "discard" in request.POST:
        services.delete_draft(version, user=user)
        messages.info(request, f"Draft version {version.number} discarded.")
        return redirect("catalog:product_detail", slug=product.slug)
    if request.method == "POST":
        metadata = _posted_metadata(request.POST, version.sdv_metadata)
        try:
            version = relational.confirm_metadata(version, metadata, user=user)
            submission.submit_version(version, user=user)
        except services.CatalogError as caught:
            error = caught.message
            problems = caught.extra.get("problems", [])
        else:
            messages.success(request, f"Version {version.number} submitted for certification.")
            return redirect(
                f"{reverse('catalog:product_detail', args=[product.slug])}?version={version.number}"
            )
    files = list(version.files.all())
    tables = [
        {
            "name": name,
            "spec": spec,
            "columns": [
                {"name": column, "sdtype": item.get("sdtype", "")}
                for column, item in spec.get("columns", {}).items()
            ],
            "files": [f for f in files if f.table_name == name],
        }
        for name, spec in metadata.get("tables", {}).items()
    ]
    return render(
        request,
        "catalog/version_confirm_tables.html",
        {
            "product": product,
            "version": version,
            "tables": tables,
            "relationships": list(enumerate(metadata.get("relationships", []))),
            "sdtypes": SDTYPES,
            "roles": [FileRole.SYNTHETIC, FileRole.TRAIN, FileRole.HOLDOUT],
            "error": error,
            "problems": problems,
        },
        status=400 if error else 200,
    )
