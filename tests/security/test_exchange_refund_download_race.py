"""Issue 18, item 2: a refund and a download of the same order started within 0–40 ms of each other must
not both win (the attack got the money back *and* 2–6 full copies, 5 times out of 5).

The race runs in a separate process (see race_refund_download.py): two threads, each with its own
connection to a file SQLite database in WAL mode, over the real API views, services and localstripe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROUNDS = 24


@pytest.mark.slow
def test_a_refund_racing_a_download_never_gives_both_the_money_and_a_copy(
    tmp_path: Path, localstripe_url: str
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNTHEX_", "DJANGO_", "STRIPE_", "DATABASE_URL", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="marketplace.settings.test",
        SYNTHEX_VAR_DIR=str(tmp_path / "var"),
        STRIPE_API_BASE=localstripe_url,
        STRIPE_WEBHOOK_SECRET="whsec_race",
        SYNTHEX_DOWNLOAD_RATE="100000/min",
        PYTHONPATH=str(REPO),
    )
    completed = subprocess.run(
        [sys.executable, str(HERE / "race_refund_download.py"), str(ROUNDS), "18"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rounds = json.loads(completed.stdout.strip().splitlines()[-1])

    assert len(rounds) == ROUNDS
    broken = [item for item in rounds if "error" in str(item["refund_status"]) + str(item["download_status"])]
    assert broken == []
    both = [item for item in rounds if item["money_back"] and item["served"]]
    assert both == [], f"{len(both)} of {ROUNDS} rounds gave the money back and a copy: {both}"
    # Exactly one side won each round, and the HTTP answers say which.
    for item in rounds:
        if item["money_back"]:
            assert (item["refund_status"], item["download_status"], item["served"]) == (201, 403, 0)
        else:
            assert (item["refund_status"], item["download_status"], item["served"]) == (409, 200, 1)
    assert {item["money_back"] for item in rounds} == {True, False}
