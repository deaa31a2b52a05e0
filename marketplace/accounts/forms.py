from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm

from marketplace.accounts.models import User


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True)
    provider_name = forms.CharField(
        max_length=120,
        required=False,
        label="Provider organization (optional)",
        help_text="Name an organization to sell data as a provider. Leave empty to buy only.",
    )

    class Meta:
        model = User
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists.")
        return email


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    is_provider = forms.BooleanField(required=False, initial=True, label="Sells data (provider)")

    def clean_name(self) -> Any:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the organization a name.")
        return name
