"""The platform's Ed25519 signing keys (certificates, ledger tree heads, receipts).

The private key comes from ``SYNTHEX_SIGNING_KEY_PEM`` in production or from a file under
``SYNTHEX_VAR_DIR/keys/`` made on first use. Public keys, retired ones included, are recorded in the
database so ``/.well-known/synthex/keys.json`` keeps verifying old certificates after a rotation.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.certification import signing
from marketplace.certification.models import SigningKey

ACTIVE_FILE = "active.pem"


def _keys_dir() -> Path:
    return Path(settings.SYNTHEX_KEYS_DIR)


def _write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(signing.private_key_to_pem(key))
    os.replace(tmp, path)


@lru_cache(maxsize=1)
def _load_active_private_key(marker: str) -> Ed25519PrivateKey:
    if settings.SYNTHEX_SIGNING_KEY_PEM:
        return signing.load_private_key_pem(settings.SYNTHEX_SIGNING_KEY_PEM.encode())
    path = _keys_dir() / ACTIVE_FILE
    if not path.exists():
        _write_private_key(path, signing.generate_private_key())
    return signing.load_private_key_pem(path.read_bytes())


def _active_marker() -> str:
    path = _keys_dir() / ACTIVE_FILE
    return f"{path}:{path.stat().st_mtime_ns}" if path.exists() else str(path)


def active_private_key() -> Ed25519PrivateKey:
    """The key that signs now; made and recorded on first use."""
    key = _load_active_private_key(_active_marker())
    record_public_key(key)
    return key


def record_public_key(key: Ed25519PrivateKey) -> SigningKey:
    identifier = signing.key_id(key.public_key())
    record, created = SigningKey.objects.get_or_create(
        key_id=identifier,
        defaults={"public_key_pem": signing.public_key_pem(key), "status": SigningKey.Status.ACTIVE},
    )
    if created:
        SigningKey.objects.exclude(pk=record.pk).filter(status=SigningKey.Status.ACTIVE).update(
            status=SigningKey.Status.RETIRED, retired_at=timezone.now()
        )
    return record


@transaction.atomic
def rotate_signing_key() -> SigningKey:
    """Make a new active key; the old public key stays published as retired."""
    if settings.SYNTHEX_SIGNING_KEY_PEM:
        raise RuntimeError(
            "The signing key comes from SYNTHEX_SIGNING_KEY_PEM: rotate it in the secret store."
        )
    path = _keys_dir() / ACTIVE_FILE
    if path.exists():
        old = signing.load_private_key_pem(path.read_bytes())
        _write_private_key(
            _keys_dir() / f"retired-{signing.key_id(old.public_key()).replace(':', '-')}.pem", old
        )
    _write_private_key(path, signing.generate_private_key())
    _load_active_private_key.cache_clear()
    return record_public_key(active_private_key())


def keys_document() -> dict[str, object]:
    """The keys.json document: every public key the platform ever signed with."""
    active_private_key()
    records = SigningKey.objects.order_by("status", "-created_at")
    return {
        "keys": [
            {"key_id": r.key_id, "alg": "Ed25519", "public_key_pem": r.public_key_pem, "status": r.status}
            for r in records
        ]
    }
