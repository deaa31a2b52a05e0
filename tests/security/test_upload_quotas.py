"""Issue 18 #14: a user without a provider organization opened 60 upload sessions of 2 GiB each. Only
members of a provider organization open sessions, and each organization has a quota of unfinished sessions
(429) and of their declared bytes (413); a refused start creates nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from marketplace.catalog.models import Upload

pytestmark = pytest.mark.django_db

GIB = 1024**3


def start(client: Any, size: int = 2 * GIB, **extra: Any) -> Any:
    return client.post("/api/v1/uploads/", {"filename": "big.csv", "size": size, **extra}, format="json")


def test_a_user_outside_any_provider_organization_opens_no_session(
    buyer: Any, api_client_for: Callable[[Any], Any]
) -> None:
    client = api_client_for(buyer)
    answers = [start(client) for _ in range(3)]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "not_a_provider")] * 3
    assert Upload.objects.count() == 0


def test_a_member_of_a_non_provider_organization_opens_no_session(
    buyer: Any, api_client_for: Callable[[Any], Any], organization_factory: Callable[..., Any]
) -> None:
    organization_factory(buyer, "Just buyers", is_provider=False)
    response = start(api_client_for(buyer), organization="just-buyers")
    assert (response.status_code, response.json()["code"]) == (403, "not_a_provider")
    assert Upload.objects.count() == 0


def test_open_sessions_are_counted_per_organization(
    provider: Any,
    user_factory: Callable[..., Any],
    api_client_for: Callable[[Any], Any],
    settings: Any,
) -> None:
    from marketplace.accounts.models import Membership

    settings.SYNTHEX_UPLOAD_MAX_OPEN_SESSIONS = 3
    colleague = user_factory("colleague")
    Membership.objects.create(user=colleague, organization=provider.organization, role="member")
    first = [start(api_client_for(provider), size=1000) for _ in range(2)]
    assert [a.status_code for a in first] == [201, 201]
    assert start(api_client_for(colleague), size=1000).status_code == 201
    refused = start(api_client_for(colleague), size=1000)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_uploads"
    assert "limit is 3" in refused.json()["detail"]
    assert Upload.objects.filter(organization=provider.organization).count() == 3
    # An attached session no longer counts; a deleted one is gone.
    Upload.objects.filter(pk=first[0].json()["id"]).update(status="attached")
    assert api_client_for(provider).delete(f"/api/v1/uploads/{first[1].json()['id']}/").status_code == 204
    assert [start(api_client_for(provider), size=1000).status_code for _ in range(3)] == [201, 201, 429]


def test_declared_bytes_are_capped_per_organization(
    provider: Any, api_client_for: Callable[[Any], Any], settings: Any
) -> None:
    settings.SYNTHEX_UPLOAD_MAX_OPEN_BYTES = 5 * GIB
    client = api_client_for(provider)
    assert [start(client).status_code for _ in range(2)] == [201, 201]
    refused = start(client)
    assert refused.status_code == 413
    assert refused.json()["code"] == "upload_quota_exceeded"
    assert f"quota of {5 * GIB:,}" in refused.json()["detail"]
    assert start(client, size=GIB).status_code == 201  # what still fits is accepted
    assert Upload.objects.count() == 3


def test_defaults_stop_the_attack_of_sixty_two_gib_sessions(
    provider: Any, api_client_for: Callable[[Any], Any]
) -> None:
    client = api_client_for(provider)
    statuses = [start(client).status_code for _ in range(12)]
    assert statuses == [201] * 10 + [413] * 2  # 20 GiB: ten sessions of 2 GiB
    assert Upload.objects.count() == 10


def test_sessions_for_a_product_count_against_its_organization(
    provider: Any,
    api_client_for: Callable[[Any], Any],
    product_factory: Callable[..., Any],
    organization_factory: Callable[..., Any],
    buyer: Any,
) -> None:
    second = organization_factory(provider, "Second Lab")
    product = product_factory(provider, "Second product", organization=second)
    client = api_client_for(provider)
    ambiguous = start(client, size=1000)
    assert (ambiguous.status_code, ambiguous.json()["code"]) == (400, "ambiguous_organization")
    response = start(client, size=1000, product=product.slug)
    assert response.status_code == 201
    assert Upload.objects.get(pk=response.json()["id"]).organization == second
    # Someone else's product does not lend its organization's quota.
    other = start(api_client_for(buyer), size=1000, product=product.slug)
    assert (other.status_code, other.json()["code"]) == (404, "unknown_product")
