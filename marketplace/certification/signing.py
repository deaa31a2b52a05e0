"""Signing and verifying Synthex certificates: RFC 8785 (JCS) canonical JSON signed with Ed25519.

Pure: imports only ``cryptography``, ``rfc8785`` and the standard library, so the stand-alone verifier
(``python -m marketplace.certification.verify``) runs without Django.

- The signature covers ``canonical_bytes(document without "signature")``.
- ``signature = {"alg": "Ed25519", "key_id": ..., "value": base64(64-byte signature)}``.
- A key id is ``"ed25519:" + the first 16 hex digits of SHA-256(raw 32-byte public key)``.
- Signed documents are published in canonical form (:func:`document_bytes`), which lets a holder cut the
  signed bytes out with ``sed`` and check them with ``openssl`` alone (docs/verify-with-openssl.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CERTIFICATE_SCHEMA = "synthex.certificate/v2"
# Schemas this code reads and verifies: v1 documents (engine 1.x) keep verifying; they are never rewritten.
CERTIFICATE_SCHEMAS = ("synthex.certificate/v1", "synthex.certificate/v2")
SIGNATURE_ALGORITHM = "Ed25519"
SIGNATURE_FIELD = "signature"
KEY_ID_PREFIX = "ed25519:"
KEYS_PATH = "/.well-known/synthex/keys.json"

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of a check: ``ok`` only when every part held; ``reasons`` says, in plain sentences, what did not."""

    ok: bool
    key_id: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ArtifactMatch:
    """Outcome of matching one file against a certificate: the file's SHA-256 (hex) and the artifact it matched."""

    ok: bool
    path: str
    sha256: str
    artifact_name: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class PublishedKey:
    """One entry of keys.json; ``status`` is ``"active"`` (signs new documents) or ``"retired"`` (verifies old ones)."""

    public_key: Ed25519PublicKey
    status: Literal["active", "retired"]


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"certificates cannot hold the non-finite number {value!r}")
    if isinstance(value, Mapping):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_non_finite(item)


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of a JSON document.

    Raises ValueError for NaN or infinite floats, which JSON cannot carry.
    """
    _reject_non_finite(document)
    return rfc8785.dumps(dict(document))


def _unsigned(document: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in document.items() if name != SIGNATURE_FIELD}


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """Return the exact bytes a signature covers: the JCS bytes of the document without ``signature``."""
    return canonical_bytes(_unsigned(document))


def document_bytes(document: Mapping[str, Any]) -> bytes:
    """Return the bytes to publish a signed document as (its JCS form, signature included)."""
    return canonical_bytes(document)


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """Return the 32-byte raw Ed25519 public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return ``"ed25519:" + first 16 hex digits of SHA-256(raw public key)``; stable for a key forever."""
    return KEY_ID_PREFIX + hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def generate_private_key() -> Ed25519PrivateKey:
    """Return a fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_key_to_pem(private_key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """Serialize a private key as PKCS#8 PEM, encrypted when a password is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key_pem(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """Load a PKCS#8 PEM private key; raises ValueError unless it is an Ed25519 key."""
    key = serialization.load_pem_private_key(data, password=password)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the private key is not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Return the SubjectPublicKeyInfo PEM text of a key (of the public half for a private key)."""
    public_key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key_pem(text: str | bytes) -> Ed25519PublicKey:
    """Load a SubjectPublicKeyInfo PEM public key; raises ValueError unless it is an Ed25519 key."""
    key = serialization.load_pem_public_key(text.encode("ascii") if isinstance(text, str) else text)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def keys_document(entries: Iterable[tuple[Ed25519PublicKey, Literal["active", "retired"]]]) -> dict[str, Any]:
    """Return the keys.json document served at ``/.well-known/synthex/keys.json``.

    Shape: ``{"keys": [{"key_id", "alg": "Ed25519", "public_key_pem", "status": "active" | "retired"}]}``,
    in the order given. Retired keys stay listed so that old certificates keep verifying.
    """
    keys = []
    for public_key, status in entries:
        if status not in ("active", "retired"):
            raise ValueError(f"key status must be 'active' or 'retired', got {status!r}")
        keys.append(
            {
                "key_id": key_id(public_key),
                "alg": SIGNATURE_ALGORITHM,
                "public_key_pem": public_key_pem(public_key),
                "status": status,
            }
        )
    return {"keys": keys}


def load_published_keys(document: Mapping[str, Any]) -> dict[str, PublishedKey]:
    """Parse a keys.json document into ``{key_id: PublishedKey}``.

    Raises ValueError when the document is malformed, a key is not Ed25519, or a listed ``key_id`` is not the
    one derived from its public key (a mislabelled key must never verify anything).
    """
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError('keys.json must be an object with a "keys" list')
    published: dict[str, PublishedKey] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"keys.json entry {position} is not an object")
        if entry.get("alg") != SIGNATURE_ALGORITHM:
            raise ValueError(
                f"keys.json entry {position} has algorithm {entry.get('alg')!r}, expected 'Ed25519'"
            )
        status = entry.get("status")
        if status not in ("active", "retired"):
            raise ValueError(
                f"keys.json entry {position} has status {status!r}, expected 'active' or 'retired'"
            )
        pem = entry.get("public_key_pem")
        if not isinstance(pem, str):
            raise ValueError(f"keys.json entry {position} has no public_key_pem text")
        public_key = load_public_key_pem(pem)
        derived = key_id(public_key)
        if entry.get("key_id") != derived:
            raise ValueError(
                f"keys.json entry {position} is labelled {entry.get('key_id')!r} but its key's id is {derived!r}"
            )
        published[derived] = PublishedKey(public_key=public_key, status=status)
    return published


def load_keys_document(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """Parse a keys.json document into ``{key_id: public key}``, retired keys included."""
    return {identifier: entry.public_key for identifier, entry in load_published_keys(document).items()}


def sign_document(document: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return a copy of ``document`` with ``signature = {alg, key_id, value}`` over :func:`signed_bytes`.

    An existing top-level ``signature`` is replaced. Raises ValueError when the unsigned document already
    contains a member named ``"signature"`` at any depth: that keeps the top-level one the only match of
    ``"signature":`` in the published bytes, which the openssl recipe relies on.
    """
    payload = signed_bytes(document)
    if b'"signature":' in payload:
        raise ValueError('a signed document cannot contain another member named "signature"')
    public_key = private_key.public_key()
    signed = dict(_unsigned(document))
    signed[SIGNATURE_FIELD] = {
        "alg": SIGNATURE_ALGORITHM,
        "key_id": key_id(public_key),
        "value": base64.b64encode(private_key.sign(payload)).decode("ascii"),
    }
    return signed


def sign_certificate(document: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign a certificate document; see :func:`sign_document`."""
    return sign_document(document, private_key)


def _as_public_keys(
    keys: Mapping[str, Ed25519PublicKey] | Mapping[str, Any],
) -> dict[str, Ed25519PublicKey]:
    if "keys" in keys and isinstance(keys["keys"], list):
        return load_keys_document(keys)
    return dict(keys)


def verify_document_signature(
    document: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey] | Mapping[str, Any]
) -> VerificationResult:
    """Check a document's Ed25519 signature against published keys.

    ``keys`` is either ``{key_id: public key}`` or a keys.json document. ``ok`` is True only when the
    signature block is well formed, names a known key and verifies over the JCS bytes of the document without
    ``signature``. Never raises for a bad document; raises ValueError only for a malformed keys.json.
    """
    public_keys = _as_public_keys(keys)
    signature = document.get(SIGNATURE_FIELD) if isinstance(document, Mapping) else None
    if not isinstance(signature, Mapping):
        return VerificationResult(False, None, ("The document has no signature.",))
    identifier = signature.get("key_id")
    identifier = identifier if isinstance(identifier, str) else None
    if signature.get("alg") != SIGNATURE_ALGORITHM:
        return VerificationResult(
            False, identifier, (f"The signature algorithm is {signature.get('alg')!r}, not Ed25519.",)
        )
    if identifier is None or identifier not in public_keys:
        return VerificationResult(
            False, identifier, (f"The signing key {identifier!r} is not among the published keys.",)
        )
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
    except binascii.Error:
        return VerificationResult(False, identifier, ("The signature value is not valid base64.",))
    try:
        payload = signed_bytes(document)
    except (TypeError, ValueError) as error:
        return VerificationResult(False, identifier, (f"The document cannot be canonicalized: {error}.",))
    try:
        public_keys[identifier].verify(value, payload)
    except InvalidSignature:
        return VerificationResult(
            False,
            identifier,
            ("The signature does not match the document: it was altered or signed by another key.",),
        )
    return VerificationResult(True, identifier, ())


def verify_certificate_signature(
    document: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey] | Mapping[str, Any]
) -> VerificationResult:
    """Check a certificate's signature; see :func:`verify_document_signature`."""
    return verify_document_signature(document, keys)


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_artifact(document: Mapping[str, Any], name: str | None, file_path: str | Path) -> ArtifactMatch:
    """Check that a file is one of the certificate's ``subject.artifacts`` by SHA-256.

    With ``name``, the file must match the artifact of that name; without it, any artifact. Does not check
    the signature (see :func:`verify_certificate_signature`). Raises OSError when the file cannot be read.
    """
    digest = sha256_file(file_path)
    subject = document.get("subject")
    artifacts = subject.get("artifacts") if isinstance(subject, Mapping) else None
    if not isinstance(artifacts, list):
        return ArtifactMatch(False, str(file_path), digest, None, ("The certificate lists no artifacts.",))
    candidates = [item for item in artifacts if isinstance(item, Mapping)]
    if name is not None:
        candidates = [item for item in candidates if item.get("name") == name]
        if not candidates:
            return ArtifactMatch(
                False, str(file_path), digest, None, (f"The certificate has no artifact named {name!r}.",)
            )
    for artifact in candidates:
        if isinstance(artifact.get("sha256"), str) and artifact["sha256"].lower() == digest:
            return ArtifactMatch(True, str(file_path), digest, artifact.get("name"), ())
    which = f"the artifact {name!r}" if name is not None else "any artifact of the certificate"
    return ArtifactMatch(
        False,
        str(file_path),
        digest,
        None,
        (f"{Path(file_path).name} (SHA-256 {digest}) does not match {which}.",),
    )


def format_issued_at(moment: datetime) -> str:
    """Return an aware datetime as RFC 3339 UTC to the second, e.g. ``2026-11-02T09:30:00Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_certificate(
    *,
    certificate_id: str,
    issued_at: datetime,
    artifacts: list[dict[str, Any]],
    evaluation: Mapping[str, Any],
    subject_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an unsigned certificate in the DESIGN.md shape.

    ``artifacts`` are ``{name, sha256 (64 hex), rows, columns}``; ``evaluation`` is the engine's
    ``Evaluation.to_dict()`` with the keys ``quality``, ``plausibility``, ``privacy``, ``charts``,
    ``parameters``, ``engine``.
    ``subject_extra`` adds members to ``subject`` (e.g. product and version ids) but cannot replace
    ``artifacts``. Raises ValueError on a malformed artifact or a missing evaluation section.
    """
    missing = [
        section
        for section in ("quality", "plausibility", "privacy", "charts", "parameters", "engine")
        if section not in evaluation
    ]
    if missing:
        raise ValueError(f"the evaluation lacks {', '.join(missing)}")
    if not artifacts:
        raise ValueError("a certificate covers at least one artifact")
    checked = []
    for artifact in artifacts:
        sha = artifact.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or any(char not in "0123456789abcdef" for char in sha):
            raise ValueError(f"artifact {artifact.get('name')!r} needs a lowercase hex SHA-256, got {sha!r}")
        for field in ("rows", "columns"):
            if not isinstance(artifact.get(field), int) or artifact[field] < 0:
                raise ValueError(f"artifact {artifact.get('name')!r} needs a non-negative integer {field}")
        if not isinstance(artifact.get("name"), str) or not artifact["name"]:
            raise ValueError("every artifact needs a name")
        checked.append(dict(artifact))
    subject: dict[str, Any] = dict(subject_extra or {})
    if "artifacts" in subject:
        raise ValueError("subject_extra cannot replace the artifacts")
    subject["artifacts"] = checked
    return {
        "schema": CERTIFICATE_SCHEMA,
        "id": certificate_id,
        "issued_at": format_issued_at(issued_at),
        "subject": subject,
        "quality": evaluation["quality"],
        "plausibility": evaluation["plausibility"],
        "privacy": evaluation["privacy"],
        "charts": evaluation["charts"],
        "parameters": evaluation["parameters"],
        "engine": evaluation["engine"],
    }
