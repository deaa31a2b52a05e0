"""Browser tests that buy use the buying fixtures of tests/orders/ (local Stripe, certified versions)."""

from orders_support import certified_version_factory, stripe_local  # noqa: F401
