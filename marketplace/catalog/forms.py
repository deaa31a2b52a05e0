from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from marketplace.accounts.models import Organization, User
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import Domain, Product
from marketplace.catalog.services import LicensePrice

CURRENCIES = [("USD", "USD"), ("EUR", "EUR"), ("GBP", "GBP")]


def to_minor(amount: Decimal) -> int:
    """A price people typed in major units (``12.50``) as integer minor units (``1250``); the form's
    currencies all have two decimals and the field allows no more."""
    return int((amount * 100).to_integral_value())


def to_major(amount_minor: int) -> Decimal:
    """Integer minor units (``1250``) as the major-unit amount a form shows (``12.50``)."""
    return (Decimal(amount_minor) / 100).quantize(Decimal("0.01"))


class ProductForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), empty_label=None)
    title = forms.CharField(max_length=160)
    summary = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 80}))
    description_md = forms.CharField(
        label="Description (Markdown)", required=False, widget=forms.Textarea(attrs={"rows": 8})
    )
    domain = forms.ChoiceField(choices=Domain.choices)
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. census, income, tabular")
    currency = forms.ChoiceField(choices=CURRENCIES, initial="USD")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        organization_field = self.fields["organization"]
        if isinstance(organization_field, forms.ModelChoiceField):
            organization_field.queryset = user.provider_organizations()
        for code, lic in LICENSES.items():
            self.fields[f"price_{code}"] = forms.DecimalField(
                label=f"{lic.name} price (in the currency above, e.g. 12.50)",
                required=False,
                min_value=0,
                max_digits=12,
                decimal_places=2,
                help_text=lic.summary + " Leave empty to not offer it; 0 makes it free.",
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(f"price_{code}") is not None for code in LICENSES):
            raise forms.ValidationError(
                "Offer the product under at least one license (set a price, 0 for free)."
            )
        return data

    def licenses(self) -> list[LicensePrice]:
        """The offered licenses, prices typed in major units (``12.50``) turned into integer minor units."""
        currency = self.cleaned_data["currency"]
        return [
            LicensePrice(
                code=code, price_minor=to_minor(self.cleaned_data[f"price_{code}"]), currency=currency
            )
            for code in LICENSES
            if self.cleaned_data.get(f"price_{code}") is not None
        ]

    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data.get("tags", "").split(",") if t.strip()]


class ProductEditForm(ProductForm):
    """Change a product's description and prices (people type prices in major units, currency shown)."""

    def __init__(self, *args: Any, user: User, product: Product, **kwargs: Any) -> None:
        licenses = list(product.licenses.all())
        initial = {
            "title": product.title,
            "summary": product.summary,
            "description_md": product.description_md,
            "domain": product.domain,
            "tags": ", ".join(product.tags or []),
            "currency": licenses[0].currency if licenses else "USD",
            **{f"price_{item.code}": to_major(item.price_minor) for item in licenses},
        }
        super().__init__(*args, user=user, initial=initial, **kwargs)
        del self.fields["organization"]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".csv,.parquet,.jsonl,.ndjson"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class VersionUploadForm(forms.Form):
    synthetic = MultipleFileField(
        label="Synthetic tables", help_text="CSV, Parquet or JSON Lines; one or more."
    )
    train = forms.FileField(
        required=False,
        label="Reference train rows (private)",
        help_text="The real rows the synthesizer learned from. Needed to certify: without them the version "
        "is kept as a draft that cannot be submitted.",
    )
    holdout = forms.FileField(
        required=False,
        label="Reference holdout rows (private)",
        help_text="Real rows the synthesizer never saw.",
    )
    changelog = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="What changed"
    )
