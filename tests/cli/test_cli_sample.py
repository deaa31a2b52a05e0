"""``synthex sample``: queue a draw, follow it, download the buyer's copy and check the copy's own hash
(issue 17 #4). A real server answers; only the sandboxed model is replaced, by a function that writes
Adult rows (no generator can be fitted within a CLI test's time)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from draw_support import FakeSandbox, generator_entitlement, install_fake_sandbox, rows_left

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> FakeSandbox:
    return install_fake_sandbox(monkeypatch)


@pytest.fixture
def entitlement(provider: Any, buyer: Any, product_factory: Any) -> Any:
    return generator_entitlement(provider, buyer, product_factory)


def test_sample_downloads_the_buyers_copy_and_checks_its_own_hash(
    cli: Any, sandbox: FakeSandbox, entitlement: Any, buyer: Any, token_for: Any, tmp_path: Path
) -> None:
    from exchange.downloads.models import Delivery
    from marketplace.generators.models import SampleDraw

    output = tmp_path / "rows.parquet"
    token = token_for(buyer)
    run = cli("sample", entitlement.id, "--rows", "500", "--seed", "7", "-o", output, "--interval", "0.05", "--json", token=token)  # fmt: skip
    assert run.code == 0, run.err + run.out
    body = run.json()
    draw = SampleDraw.objects.get(pk=body["id"])
    delivery = Delivery.objects.get(draw=draw)
    payload = output.read_bytes()
    assert hashlib.sha256(payload).hexdigest() == delivery.sha256 == body["copy_sha256"]
    assert delivery.sha256 != draw.sha256  # the copy is fingerprinted: not the draw file
    assert (body["status"], body["rows"], body["delivery"]) == ("succeeded", 500, delivery.id)
    assert (
        len(pd.read_parquet(output)) == delivery.rows == body["rows_delivered"] == 500
    )  # spares cover the fingerprint
    assert rows_left(entitlement) == 4500
    assert not list(tmp_path.glob("*.part"))
    # The same draw fetched again: nothing is drawn or counted again.
    again = cli("sample", entitlement.id, "--draw", draw.id, "-o", tmp_path / "again.parquet", "--interval", "0.05", token=token)  # fmt: skip
    assert again.code == 0, again.err
    assert (tmp_path / "again.parquet").read_bytes() == payload
    assert (SampleDraw.objects.count(), sandbox.calls, rows_left(entitlement)) == (1, 1, 4500)


def test_a_failed_draw_takes_nothing_from_the_quota(
    cli: Any, sandbox: FakeSandbox, entitlement: Any, buyer: Any, token_for: Any, tmp_path: Path
) -> None:
    from exchange.ledger.models import LedgerEvent

    sandbox.fail = True
    output = tmp_path / "rows.parquet"
    run = cli("sample", entitlement.id, "--rows", "5000", "-o", output, "--interval", "0.05", token=token_for(buyer))  # fmt: skip
    assert run.code == 1
    assert "failed" in run.err and "nothing was taken from your quota" in run.err
    assert not output.exists() and not list(tmp_path.glob("*.part"))
    assert rows_left(entitlement) == 5000
    assert not LedgerEvent.objects.filter(kind="quota.consumed").exists()
    sandbox.fail = False
    whole = cli("sample", entitlement.id, "--rows", "5000", "-o", output, "--interval", "0.05", token=token_for(buyer))  # fmt: skip
    assert whole.code == 0, whole.err
    assert rows_left(entitlement) == 0


def test_sample_needs_rows_or_a_draw(cli: Any, entitlement: Any, buyer: Any, token_for: Any) -> None:
    run = cli("sample", entitlement.id, token=token_for(buyer))
    assert run.code == 2
    assert "Give --rows" in run.err
