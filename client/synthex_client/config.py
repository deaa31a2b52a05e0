"""Where the CLI keeps its settings and state, and how it reads them.

The settings file is ``$SYNTHEX_CONFIG``, else ``$XDG_CONFIG_HOME/synthex/config.json``, else
``~/.config/synthex/config.json``: ``{"url": ..., "token": ...}``, written with mode 0600 in a 0700
folder. The state files (in-flight uploads, last verified ledger heads) live beside it. For each setting
a command-line flag wins over the environment (``SYNTHEX_URL``, ``SYNTHEX_TOKEN``), which wins over the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    explicit = os.environ.get("SYNTHEX_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "synthex" / "config.json"


def state_path(name: str) -> Path:
    """A state file beside the settings file (e.g. ``uploads.json``)."""
    return config_path().parent / name


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; an empty dict when the file is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_private_json(path: Path, value: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``value`` as JSON, readable by its owner only (0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".synthex-", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None


def resolve(url: str | None = None, token: str | None = None) -> Settings:
    """The server and token to use: flags, then the environment, then the settings file."""
    stored = read_json(config_path())
    chosen_url = url or os.environ.get("SYNTHEX_URL") or stored.get("url") or DEFAULT_URL
    chosen_token = token or os.environ.get("SYNTHEX_TOKEN") or stored.get("token") or None
    return Settings(url=str(chosen_url).rstrip("/"), token=chosen_token)


def save_login(url: str, token: str) -> Path:
    path = config_path()
    write_private_json(path, {**read_json(path), "url": url.rstrip("/"), "token": token})
    return path


def forget_login() -> Path:
    path = config_path()
    stored = read_json(path)
    stored.pop("token", None)
    write_private_json(path, stored)
    return path
