from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        call_command("seed_demo")


@pytest.mark.slow
def test_seed_demo_makes_certified_products_and_sales(settings, capsys):
    from exchange.orders.models import Order
    from marketplace.accounts.models import Organization, User
    from marketplace.catalog.models import Product
    from marketplace.certification.models import Certificate

    settings.DEBUG = True
    call_command("seed_demo")
    assert set(User.objects.values_list("username", flat=True)) >= {
        "demo-provider",
        "demo-buyer",
        "demo-auditor",
        "demo-staff",
    }
    demo_buyer = User.objects.get(username="demo-buyer")
    assert demo_buyer.check_password("synthex-demo")
    assert User.objects.get(username="demo-auditor").is_auditor
    assert User.objects.get(username="demo-staff").is_staff
    assert Organization.objects.filter(is_provider=True).count() >= 3
    products = Product.objects.filter(is_listed=True, published_at__isnull=False)
    assert products.count() >= 8
    assert products.values("domain").distinct().count() >= 5
    assert Certificate.objects.count() == products.count()
    assert all(p.quality_grade and p.privacy_grade for p in products)
    assert Order.objects.filter(buyer=demo_buyer, status="paid").count() == 4
    dp_product = Product.objects.get(kind="generator", title__contains="differentially private")
    assert (dp_product.privacy_budget.epsilon_spent, dp_product.privacy_budget.epsilon_total) == (1.0, 3.0)
    statement = Certificate.objects.get(version__product=dp_product).document["privacy"][
        "differential_privacy"
    ]
    assert (statement["epsilon"], statement["delta"]) == (1.0, 1e-6)
    call_command("audit_ledger")
    call_command("seed_demo", "--if-empty")
    assert "already present" in capsys.readouterr().out
    assert Product.objects.count() == products.count()
