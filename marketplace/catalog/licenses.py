"""The fixed list of licenses a product can be sold under, with their readable texts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class License:
    code: str
    name: str
    summary: str
    text: str
    includes_updates: bool


LICENSES: dict[str, License] = {
    "research": License(
        code="research",
        name="Research",
        summary="Non-commercial research and teaching; results may be published.",
        text=(
            "You may use the data for non-commercial research and teaching by the licensee's own staff and "
            "students, and publish results, figures and aggregate statistics derived from it. You may not "
            "resell, redistribute or publish the rows themselves, nor use the data in a commercial product "
            "or service. Updates to the same product are not included."
        ),
        includes_updates=False,
    ),
    "standard": License(
        code="standard",
        name="Standard",
        summary="Internal use by one organization, including commercial analytics; no redistribution.",
        text=(
            "You may use the data inside the licensee's organization for any internal purpose, commercial "
            "analytics and model development included. You may not resell or redistribute the rows, nor "
            "share them with other organizations. Versions published within 12 months of purchase are "
            "included."
        ),
        includes_updates=True,
    ),
    "commercial": License(
        code="commercial",
        name="Commercial",
        summary="Use in products and services, including models shipped to customers; updates included.",
        text=(
            "You may use the data and models trained on it in products and services offered to third "
            "parties. You may not resell the rows as a dataset or make them publicly available. All later "
            "versions of the product are included while it is listed."
        ),
        includes_updates=True,
    ),
}

LICENSE_CHOICES = [(code, lic.name) for code, lic in LICENSES.items()]
