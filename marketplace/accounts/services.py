"""Writes for accounts: sign-up, organizations, API tokens."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from marketplace.accounts.authentication import forget_user_tokens
from marketplace.accounts.models import Membership, Organization, User


def unique_organization_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{n}"
        n += 1
    return slug


@transaction.atomic
def create_organization(*, owner: User, name: str, is_provider: bool, description: str = "") -> Organization:
    """Create an organization with ``owner`` as its first member (role owner)."""
    organization = Organization.objects.create(
        slug=unique_organization_slug(name), name=name, is_provider=is_provider, description=description
    )
    Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    return organization


@transaction.atomic
def sign_up(*, username: str, email: str, password: str, provider_name: str = "") -> User:
    """Create a user; with ``provider_name`` also a provider organization they own."""
    user = User.objects.create_user(username=username, email=email, password=password)
    if provider_name:
        create_organization(owner=user, name=provider_name, is_provider=True)
    return user


def api_token_for(user: User) -> str:
    """Return the user's API key, creating it on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def revoke_api_token(user: User) -> None:
    """Delete the user's API token: refused (401) from the next request on, in every process (its cached
    lookup is forgotten before the row goes)."""
    forget_user_tokens(user.pk)
    Token.objects.filter(user=user).delete()


@transaction.atomic
def rotate_api_token(user: User) -> str:
    """Replace the user's API key with a new one and return it; the old key is refused at once."""
    revoke_api_token(user)
    return Token.objects.create(user=user).key


def deactivate_user(user: User) -> None:
    """Mark the user inactive: no sign-in, and their API token refused from the next request on."""
    forget_user_tokens(user.pk)
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
