"""Per-instance secrets made on first run and kept in the var dir (like the signing key under ``keys/``).

Development and ``make run`` have no ``SECRET_KEY`` in their environment; a default written in the
source would be public, and anyone knowing it could forge signed download links, sessions and password
reset tokens of every instance started from it. So each var dir gets its own random key instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret-key"


def instance_secret_key(var_dir: Path) -> str:
    """The var dir's ``secret-key`` (64 random URL-safe characters, mode 0600), created on first call.

    Safe when several processes of one instance start at once: the file is written under a temporary
    name and linked into place with ``O_EXCL`` semantics, so every process reads the same key.
    """
    path = Path(var_dir) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # fails when another process won the race; its key is then kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key) < 50:
        raise OSError(f"{path} holds no usable secret key; delete it to have a new one made")
    return key
