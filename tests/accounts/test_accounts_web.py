from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from marketplace.accounts.models import Membership, Organization, User

pytestmark = pytest.mark.django_db


def test_sign_up_as_provider_creates_user_organization_and_logs_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "ada",
            "email": "Ada@Example.test",
            "password1": "a-long-enough-pass",
            "password2": "a-long-enough-pass",
            "provider_name": "Analytical Engines",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="ada")
    assert user.email == "ada@example.test"
    organization = Organization.objects.get(slug="analytical-engines")
    assert organization.is_provider
    assert Membership.objects.get(user=user, organization=organization).role == "owner"
    assert client.get("/accounts/profile/").status_code == 200


def test_sign_up_refuses_taken_email_and_creates_nothing(client, user_factory):
    user_factory("first")
    response = client.post(
        "/accounts/signup/",
        {
            "username": "second",
            "email": "FIRST@example.test",
            "password1": "a-long-enough-pass",
            "password2": "a-long-enough-pass",
            "provider_name": "Nope Org",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert not User.objects.filter(username="second").exists()
    assert not Organization.objects.filter(name="Nope Org").exists()


def test_login_and_logout(client, user_factory):
    user_factory("grace", password="a-long-enough-pass")
    response = client.post("/accounts/login/", {"username": "grace", "password": "a-long-enough-pass"})
    assert response.status_code == 302
    assert client.get("/accounts/profile/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/profile/").status_code == 302


def test_password_reset_by_email_sets_a_new_password(client, user_factory):
    user_factory("linus", password="old-password-123")
    assert client.post("/accounts/password-reset/", {"email": "linus@example.test"}).status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://[^/]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link).url  # Django redirects to the set-password form
    response = client.post(
        form_url, {"new_password1": "brand-new-pass-456", "new_password2": "brand-new-pass-456"}
    )
    assert response.status_code == 302
    assert User.objects.get(username="linus").check_password("brand-new-pass-456")


def test_create_api_token_prints_a_working_key(user_factory, capsys, client):
    user_factory("tokenuser")
    call_command("create_api_token", "tokenuser")
    key = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    response = client.get("/api/v1/products/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


def test_create_api_token_for_unknown_user_fails_clearly():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_organization_page_lists_only_listed_products(client, provider, product_factory, version_factory):
    shown = product_factory(provider, "Shown product")
    version_factory(shown, provider, submit=True)
    hidden = product_factory(provider, "Hidden product")
    version_factory(hidden, provider, submit=True)
    hidden.is_listed = False
    hidden.save()
    page = client.get(f"/organizations/{provider.organization.slug}/").content.decode()
    assert "Shown product" in page
    assert "Hidden product" not in page
