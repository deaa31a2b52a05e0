"""Reads for the catalog: search with facets, product pages, who may see which file."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from marketplace.accounts.models import User
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import (
    Domain,
    FileRole,
    Product,
    ProductKind,
    ProductVersion,
    VersionStatus,
)

ORDERINGS: dict[str, tuple[str, ...]] = {
    "relevance": ("-relevance", "-published_at"),
    "newest": ("-published_at", "-id"),
    "price": ("price_from_minor", "-published_at"),
    "-price": ("-price_from_minor", "-published_at"),
    "rows": ("-row_count", "-published_at"),
    "quality": ("-quality_score", "-published_at"),
    "dcr_share": ("dcr_share", "-published_at"),
    "title": ("title",),
}
FORMATS = ("csv", "parquet", "jsonl")
PRIVACY_GRADES = ("A", "B", "C", "D", "F")
ROW_BUCKETS: dict[str, tuple[int, int | None]] = {
    "lt1k": (0, 1_000),
    "1k-100k": (1_000, 100_000),
    "100k-1m": (100_000, 1_000_000),
    "gte1m": (1_000_000, None),
}


@dataclass(frozen=True)
class CatalogQuery:
    """A validated catalog query; every field is optional."""

    q: str = ""
    domain: str = ""
    license: str = ""
    format: str = ""
    provider: str = ""
    kind: str = ""
    min_price_minor: int | None = None
    max_price_minor: int | None = None
    rows: str = ""
    min_quality: float | None = None
    privacy_grade: str = ""
    ordering: str = ""
    errors: tuple[str, ...] = field(default=())

    @classmethod
    def from_params(cls, params: Any, *, prices_in_major_units: bool = False) -> CatalogQuery:
        """Parse query parameters; unknown or malformed values are dropped and reported in ``errors``.

        ``min_price``/``max_price`` are integer minor units (the API's rule), or with
        ``prices_in_major_units`` amounts as people write them (``12.50``: the web page's filter). The
        catalog's currencies (USD, EUR, GBP) all have two decimals."""
        read = _QueryParams(params, prices_in_major_units)
        min_quality = read.number("min_quality", float)
        if min_quality is not None and min_quality > 1:
            min_quality = min_quality / 100 if min_quality <= 100 else None
        return cls(
            q=(params.get("q") or "").strip()[:200],
            domain=read.choice("domain", Domain.values),
            license=read.choice("license", LICENSES),
            format=read.choice("format", FORMATS),
            provider=(params.get("provider") or "").strip()[:60],
            kind=read.choice("kind", ("dataset", "generator")),
            min_price_minor=read.price("min_price"),
            max_price_minor=read.price("max_price"),
            rows=read.choice("rows", ROW_BUCKETS),
            min_quality=min_quality,
            privacy_grade=read.choice("privacy_grade", PRIVACY_GRADES),
            ordering=read.choice("ordering", ORDERINGS),
            errors=tuple(read.errors),
        )


class _QueryParams:
    """Reads one query's parameters, collecting a plain sentence in ``errors`` for each value dropped."""

    def __init__(self, params: Any, prices_in_major_units: bool) -> None:
        self.params = params
        self.prices_in_major_units = prices_in_major_units
        self.errors: list[str] = []

    def choice(self, name: str, allowed: Any) -> str:
        value = (self.params.get(name) or "").strip()
        if value and value not in allowed:
            self.errors.append(f"Unknown {name} {value!r}.")
            return ""
        return value

    def number(self, name: str, kind: type) -> Any:
        raw = (self.params.get(name) or "").strip()
        if not raw:
            return None
        try:
            value = kind(raw)
            if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
                raise ValueError(raw)
        except (ValueError, InvalidOperation):
            self.errors.append(f"{name} must be a number.")
            return None
        if value < 0:
            self.errors.append(f"{name} must not be negative.")
            return None
        return value

    def price(self, name: str) -> int | None:
        """Integer minor units, or amounts in major units (two decimals) rounded half-even to minor units."""
        if not self.prices_in_major_units:
            return self.number(name, int)
        amount = self.number(name, Decimal)
        return None if amount is None else int((amount * 100).to_integral_value(ROUND_HALF_EVEN))


def listed_products() -> QuerySet[Product]:
    """Products a buyer can see: listed by staff and with at least one submitted version."""
    return Product.objects.filter(is_listed=True, published_at__isnull=False)


def _terms(q: str) -> list[str]:
    return [t for t in q.lower().split() if t][:8]


def _apply_filters(qs: QuerySet[Product], query: CatalogQuery, skip: str = "") -> QuerySet[Product]:
    for term in _terms(query.q):
        qs = qs.filter(search_text__contains=term)
    facets: dict[str, dict[str, str]] = {
        "domain": {"domain": query.domain},
        "license": {"licenses__code": query.license},
        "format": {"formats__contains": f",{query.format},"},
        "provider": {"organization__slug": query.provider},
        "kind": {"kind": query.kind},
    }
    for facet, lookup in facets.items():
        if getattr(query, facet) and skip != facet:
            qs = qs.filter(**lookup)
    if query.min_price_minor is not None:
        qs = qs.filter(price_from_minor__gte=query.min_price_minor)
    if query.max_price_minor is not None:
        qs = qs.filter(price_from_minor__lte=query.max_price_minor)
    if query.rows and skip != "rows":
        low, high = ROW_BUCKETS[query.rows]
        qs = qs.filter(row_count__gte=low)
        if high is not None:
            qs = qs.filter(row_count__lt=high)
    if query.min_quality is not None:
        qs = qs.filter(quality_score__gte=query.min_quality)
    if query.privacy_grade and skip != "privacy_grade":
        qs = qs.filter(privacy_grade=query.privacy_grade)
    return qs


def search_products(query: CatalogQuery) -> QuerySet[Product]:
    """Listed products matching every search term (title, summary, tags, column names, provider) and filter.

    Relevance: a term in the title counts 3, in the tags 2, anywhere else 1.
    """
    qs = _apply_filters(listed_products(), query)
    if query.license:
        qs = qs.distinct()
    terms = _terms(query.q)
    if terms:
        score: Any = Value(0)
        for term in terms:
            score = score + Case(
                When(title__icontains=term, then=Value(3)), default=Value(0), output_field=IntegerField()
            )
            score = score + Case(
                When(tags__icontains=term, then=Value(2)), default=Value(1), output_field=IntegerField()
            )
        qs = qs.annotate(relevance=score)
    ordering = query.ordering or ("relevance" if terms else "newest")
    if ordering == "relevance" and not terms:
        ordering = "newest"
    return qs.select_related("organization").order_by(*ORDERINGS[ordering])


def facet_counts(query: CatalogQuery) -> dict[str, list[tuple[str, str, int]]]:
    """For each facet, (value, label, count) among products matching the query's other filters."""
    facets: dict[str, list[tuple[str, str, int]]] = {}
    base = listed_products()
    domain_labels = dict(Domain.choices)
    rows = _apply_filters(base, query, skip="domain").values("domain").annotate(n=Count("id")).order_by("-n")
    facets["domain"] = [(r["domain"], domain_labels.get(r["domain"], r["domain"]), r["n"]) for r in rows]
    rows = (
        _apply_filters(base, query, skip="license")
        .values("licenses__code")
        .annotate(n=Count("id", distinct=True))
    )
    facets["license"] = [
        (r["licenses__code"], LICENSES[r["licenses__code"]].name, r["n"])
        for r in rows
        if r["licenses__code"] in LICENSES
    ]
    format_qs = _apply_filters(base, query, skip="format")
    counts = format_qs.aggregate(
        **{fmt: Count("id", filter=Q(formats__contains=f",{fmt},")) for fmt in FORMATS}
    )
    facets["format"] = [
        (fmt, fmt.upper() if fmt != "jsonl" else "JSON Lines", counts[fmt]) for fmt in FORMATS if counts[fmt]
    ]
    rows = (
        _apply_filters(base, query, skip="provider")
        .values("organization__slug", "organization__name")
        .annotate(n=Count("id"))
        .order_by("-n", "organization__name")[:20]
    )
    facets["provider"] = [(r["organization__slug"], r["organization__name"], r["n"]) for r in rows]
    row_qs = _apply_filters(base, query, skip="rows")
    bucket_filters = {}
    for key, (low, high) in ROW_BUCKETS.items():
        condition = Q(row_count__gte=low) & (Q(row_count__lt=high) if high is not None else Q())
        bucket_filters[key] = Count("id", filter=condition)
    counts = row_qs.aggregate(**bucket_filters)
    labels = {"lt1k": "< 1k rows", "1k-100k": "1k – 100k", "100k-1m": "100k – 1M", "gte1m": "≥ 1M rows"}
    facets["rows"] = [(key, labels[key], counts[key]) for key in ROW_BUCKETS if counts[key]]
    rows = (
        _apply_filters(base, query, skip="privacy_grade")
        .exclude(privacy_grade="")
        .values("privacy_grade")
        .annotate(n=Count("id"))
        .order_by("privacy_grade")
    )
    facets["privacy_grade"] = [(r["privacy_grade"], f"Privacy {r['privacy_grade']}", r["n"]) for r in rows]
    return facets


def on_sale_versions(product: Product) -> QuerySet[ProductVersion]:
    """Versions a buyer can buy, newest first: certified, privacy passed, certificate not revoked."""
    return (
        product.versions.filter(
            status=VersionStatus.CERTIFIED,
            certificates__privacy_passed=True,
            certificates__revocation__isnull=True,
        )
        .distinct()
        .order_by("-number")
    )


def version_on_sale(product: Product) -> ProductVersion | None:
    """The latest version on sale: a newer draft, failed or pending version never hides it."""
    return on_sale_versions(product).first()


def visible_versions(product: Product, user: User | Any) -> QuerySet[ProductVersion]:
    """Versions a user may see, newest first. Members see every version; everyone else sees versions on
    sale and those waiting for certification, never drafts nor failures (a failed certification run or a
    certificate whose privacy test failed)."""
    qs = product.versions.all()
    if not can_manage(user, product):
        pending = Q(status__in=[VersionStatus.SUBMITTED, VersionStatus.CERTIFYING])
        certified = Q(status=VersionStatus.CERTIFIED, certificates__privacy_passed=True)
        qs = qs.filter(pending | certified).distinct()
    return qs.order_by("-number")


def default_version(versions: list[ProductVersion], on_sale: ProductVersion | None) -> ProductVersion | None:
    """The version a product page leads with: the one on sale, else the newest submitted, else the newest."""
    if on_sale is not None and any(v.pk == on_sale.pk for v in versions):
        return next(v for v in versions if v.pk == on_sale.pk)
    return next((v for v in versions if v.status != VersionStatus.DRAFT), versions[0] if versions else None)


def can_manage(user: User | Any, product: Product) -> bool:
    return bool(user.is_authenticated and (user.is_staff or user.is_member_of(product.organization)))


MISSING_REFERENCE = (
    "This version has no reference train rows, so it cannot be certified: certification compares the "
    "synthetic tables with the real rows they imitate (train, and a holdout the generator never saw). "
    "Upload the version again with its train file."
)


def missing_reference(version: ProductVersion) -> str:
    """Why ``version`` cannot be submitted for certification for lack of reference rows, or "" when it has
    its train file (a holdout is optional). Generator versions bring their reference rows another way."""
    if (
        version.product.kind != ProductKind.DATASET
        or version.files.filter(role=FileRole.TRAIN, deleted_at__isnull=True).exists()
    ):
        return ""
    return MISSING_REFERENCE
