"""Issue 18, item 15: `make run` must not sign links with a public default SECRET_KEY.

Each instance (var dir) makes its own random key on first run and keeps it; a link forged with the key
that used to be written in the source is refused.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PUBLIC_DEFAULT = "synthex-development-only-not-secret"

PROBE = f"""
import json
from datetime import timedelta
from django.conf import settings
from django.core import signing
from django.utils import timezone
from exchange.downloads import services
expires = int((timezone.now() + timedelta(minutes=5)).timestamp())
forged = signing.dumps({{"d": "dlv_x", "b": 1, "e": expires}}, key={PUBLIC_DEFAULT!r}, salt=services.LINK_SALT,
                       compress=False)
try:
    services.read_link(forged)
    verdict = "accepted"
except services.DeliveryError as error:
    verdict = error.code
own = signing.dumps({{"d": "dlv_x", "b": 1, "e": expires}}, salt=services.LINK_SALT, compress=False)
print(json.dumps({{"key": settings.SECRET_KEY, "forged": verdict, "own": own}}))
"""


def _instance(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "SECRET_KEY" and not key.startswith(("SYNTHEX_", "DJANGO_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); exec(open(0).read())"],
        input=PROBE,
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "marketplace.settings", "SYNTHEX_VAR_DIR": str(var_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_each_instance_signs_with_its_own_random_key_kept_in_its_var_dir(tmp_path: Path) -> None:
    first = _instance(tmp_path / "a")
    again = _instance(tmp_path / "a")
    other = _instance(tmp_path / "b")

    assert first["forged"] == "forged_link"
    assert first["key"] != PUBLIC_DEFAULT and len(first["key"]) >= 50
    assert again["key"] == first["key"]
    assert other["key"] != first["key"]
    key_file = tmp_path / "a" / "secret-key"
    assert key_file.read_text().strip() == first["key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(path.name for path in (tmp_path / "a").iterdir() if path.name.startswith(".secret")) == []
