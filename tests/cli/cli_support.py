"""Helpers shared by the tests in tests/cli/ (importable by name, unlike conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


CLIENT = REPO / "client"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_process(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """The CLI as its own process (``python -m synthex_client``), as a user runs it."""
    environment = {**os.environ, **env, "PYTHONPATH": str(CLIENT)}
    return subprocess.Popen(
        [sys.executable, "-m", "synthex_client", *args], cwd=REPO, env=environment, **kwargs
    )
