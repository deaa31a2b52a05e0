from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from marketplace.accounts import services
from marketplace.accounts.forms import OrganizationForm, SignUpForm
from marketplace.accounts.models import Organization
from marketplace.core.auth import signed_in_user


def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("catalog:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.sign_up(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            provider_name=form.cleaned_data["provider_name"].strip(),
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Synthex, {user.username}.")
        return redirect("accounts:profile")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    memberships = (
        signed_in_user(request).memberships.select_related("organization").order_by("organization__name")
    )
    return render(
        request,
        "accounts/profile.html",
        {"memberships": memberships, "organization_form": OrganizationForm()},
    )


@login_required
@require_POST
def create_organization(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST)
    if form.is_valid():
        organization = services.create_organization(
            owner=signed_in_user(request),
            name=form.cleaned_data["name"],
            is_provider=form.cleaned_data["is_provider"],
            description=form.cleaned_data["description"],
        )
        messages.success(request, f"Organization {organization.name} created.")
        return redirect("accounts:profile")
    memberships = signed_in_user(request).memberships.select_related("organization")
    return render(
        request, "accounts/profile.html", {"memberships": memberships, "organization_form": form}, status=400
    )


@login_required
@require_POST
def api_token(request: HttpRequest) -> HttpResponse:
    key = services.api_token_for(signed_in_user(request))
    return render(request, "accounts/token.html", {"key": key})


def organization_detail(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    products = organization.products.filter(is_listed=True).order_by("-updated_at")
    return render(request, "accounts/organization.html", {"organization": organization, "products": products})
