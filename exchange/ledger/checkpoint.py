"""Signed tree heads in the C2SP tlog-checkpoint format, carried in a C2SP signed note (Ed25519).

Pure: ``cryptography`` and the standard library only. A checkpoint note reads::

    <origin>\\n
    <tree size, ASCII decimal>\\n
    <root hash, standard base64>\\n
    [time <RFC 3339 UTC, seconds>\\n]          optional extension line written by this module
    \\n
    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

The signature covers the body (the first lines, final newline included). The key hash is
``SHA-256(key name || 0x0A || 0x01 || raw 32-byte public key)[:4]`` (signed-note, signature type 0x01 =
Ed25519), so a verifier finds the key for a line from the line's name and the published keys alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "
ED25519_SIGNATURE_TYPE = b"\x01"
TIME_EXTENSION = "time "
MAX_SIGNATURES = 100

_ROOT_BYTES = 32
_KEY_HASH_BYTES = 4
_ED25519_SIGNATURE_BYTES = 64


class CheckpointError(ValueError):
    """A checkpoint is malformed, or not validly signed by a known key; the message says which, plainly."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified (or just parsed) tree head: ``size`` leaves whose RFC 6962 root is ``root`` (32 bytes)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @property
    def issued_at(self) -> datetime | None:
        """The time from a ``time <RFC 3339>`` extension line, when present."""
        for line in self.extensions:
            if line.startswith(TIME_EXTENSION):
                return datetime.strptime(line[len(TIME_EXTENSION) :], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=UTC
                )
        return None


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_key_name(key_name: str) -> None:
    if not key_name or any(char.isspace() or char == "+" for char in key_name):
        raise CheckpointError(f"a key name must be non-empty, without spaces or '+', got {key_name!r}")


def note_key_hash(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the 4-byte signed-note key hash: SHA-256(key name || 0x0A || 0x01 || raw public key)[:4]."""
    _check_key_name(key_name)
    material = key_name.encode("utf-8") + b"\n" + ED25519_SIGNATURE_TYPE + _raw(public_key)
    return hashlib.sha256(material).digest()[:_KEY_HASH_BYTES]


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """Return the checkpoint body: origin, size and base64 root lines, then extension lines, each ending in \\n."""
    if not origin or "\n" in origin or origin != origin.strip():
        raise CheckpointError(f"the origin must be one non-empty line without outer spaces, got {origin!r}")
    if size < 0:
        raise CheckpointError(f"the tree size cannot be negative, got {size}")
    if len(root) != _ROOT_BYTES:
        raise CheckpointError(f"the root must be {_ROOT_BYTES} bytes, got {len(root)}")
    for line in extensions:
        if not line or "\n" in line:
            raise CheckpointError(f"an extension must be one non-empty line, got {line!r}")
    lines = [origin, str(size), base64.b64encode(root).decode("ascii"), *extensions]
    return "".join(line + "\n" for line in lines)


def sign_note(body: str, private_key: Ed25519PrivateKey, key_name: str) -> str:
    """Return the signed note ``body + "\\n" + "— <key name> <base64(key hash || signature)>\\n"``."""
    if not body.endswith("\n") or "\n\n" in body:
        raise CheckpointError("a note body must end with a newline and contain no blank line")
    key_hash = note_key_hash(key_name, private_key.public_key())
    signature = private_key.sign(body.encode("utf-8"))
    return f"{body}\n{SIGNATURE_PREFIX}{key_name} {base64.b64encode(key_hash + signature).decode('ascii')}\n"


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    private_key: Ed25519PrivateKey,
    key_name: str,
    *,
    issued_at: datetime | None = None,
) -> str:
    """Return a signed checkpoint note for the tree ``(size, root)``, with a ``time`` line when given."""
    extensions: list[str] = []
    if issued_at is not None:
        if issued_at.tzinfo is None:
            raise CheckpointError("issued_at must be timezone-aware")
        extensions.append(TIME_EXTENSION + issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return sign_note(format_checkpoint(origin, size, root, extensions), private_key, key_name)


def parse_checkpoint_body(body: str) -> Checkpoint:
    """Parse a checkpoint body (no signature check); raises CheckpointError when malformed."""
    if not body.endswith("\n"):
        raise CheckpointError("the checkpoint body does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CheckpointError("the checkpoint origin is empty")
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(
            f"the checkpoint size {size_text!r} is not a decimal number without leading zeros"
        )
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as error:
        raise CheckpointError(f"the checkpoint root {root_text!r} is not base64") from error
    if len(root) != _ROOT_BYTES:
        raise CheckpointError(f"the checkpoint root is {len(root)} bytes, expected {_ROOT_BYTES}")
    if any(not line for line in extensions):
        raise CheckpointError("the checkpoint has an empty extension line")
    return Checkpoint(origin=origin, size=int(size_text), root=root, extensions=tuple(extensions))


def _public_keys(keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey]) -> list[Ed25519PublicKey]:
    return list(keys.values()) if isinstance(keys, Mapping) else list(keys)


def _signature_line(line: str) -> tuple[str, bytes, bytes]:
    """The key name, key hash and signature of one signature line; CheckpointError when malformed."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError(f"malformed signature line {line!r}")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        _check_key_name(name)
        blob = base64.b64decode(encoded, validate=True)
    except (CheckpointError, binascii.Error) as error:
        raise CheckpointError(f"malformed signature line {line!r}") from error
    if len(blob) < _KEY_HASH_BYTES + 1:
        raise CheckpointError(f"malformed signature line {line!r}")
    return name, blob[:_KEY_HASH_BYTES], blob[_KEY_HASH_BYTES:]


def _verify_line(
    name: str, key_hash: bytes, signature: bytes, body: str, trusted: Iterable[Ed25519PublicKey]
) -> bool:
    """Whether a trusted key made this signature line (False: no trusted key has its key hash). A line that
    claims a trusted key but does not verify raises CheckpointError: it rejects the whole note."""
    verified = False
    for public_key in trusted:
        if note_key_hash(name, public_key) != key_hash:
            continue
        if len(signature) != _ED25519_SIGNATURE_BYTES:
            raise CheckpointError(f"the signature by {name!r} is not an Ed25519 signature")
        try:
            public_key.verify(signature, body.encode("utf-8"))
        except InvalidSignature as error:
            raise CheckpointError(
                f"the signature by {name!r} does not match the note: it is forged or altered"
            ) from error
        verified = True
    return verified


def verify_note(text: str, public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey]) -> str:
    """Verify a C2SP signed note against trusted keys and return its body (final newline included).

    ``public_keys`` is ``{key_id: key}`` (as loaded from keys.json) or any iterable of keys. The note is
    accepted when at least one signature line is by a trusted key (matched by its key hash for the line's
    name) and verifies; a line that claims a trusted key but does not verify rejects the whole note, as
    signed-note requires. Lines by unknown keys are ignored. Raises CheckpointError with a plain reason.
    """
    separator = text.rfind("\n\n")
    if separator < 0:
        raise CheckpointError("the note has no signature lines (no blank line after the body)")
    body, signature_block = text[: separator + 1], text[separator + 2 :]
    if not signature_block.endswith("\n"):
        raise CheckpointError("the note's last signature line does not end with a newline")
    signature_lines = signature_block[:-1].split("\n")
    if len(signature_lines) > MAX_SIGNATURES:
        raise CheckpointError(f"the note has more than {MAX_SIGNATURES} signatures")
    trusted = _public_keys(public_keys)
    verified = False
    for line in signature_lines:
        name, key_hash, signature = _signature_line(line)
        if _verify_line(name, key_hash, signature, body, trusted):
            verified = True
    if not verified:
        raise CheckpointError("the note is not signed by any published key")
    return body


def parse_and_verify_checkpoint(
    text: str,
    public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint note (see :func:`verify_note`) and return its contents.

    With ``origin``, the checkpoint must be for that log. Raises CheckpointError with a plain reason.
    """
    checkpoint = parse_checkpoint_body(verify_note(text, public_keys))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the checkpoint is for the log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
