"""``synthex download ENTITLEMENT --set``: every table of a relational version as one checked zip."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from exchange.delivery.services import grant_entitlement
from exchange.downloads.models import Delivery

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relational"))
from hma_data import certified_relational_version  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def test_download_set_saves_the_zip_of_every_table_and_checks_its_hash(
    cli: Any, provider: Any, buyer: Any, token_for: Any, product_factory: Any, tmp_path: Path
) -> None:
    version = certified_relational_version(provider, product_factory(provider, "RAND set"), tmp_path)
    entitlement = grant_entitlement(buyer=buyer, version=version, license_code="standard", source="order:c1")
    output = tmp_path / "rand.zip"
    run = cli(
        "--json",
        "download",
        entitlement.id,
        "--set",
        "--format",
        "jsonl",
        "-o",
        output,
        token=token_for(buyer),
    )
    assert run.code == 0, run.err
    delivery = Delivery.objects.get(entitlement=entitlement)
    assert hashlib.sha256(output.read_bytes()).hexdigest() == delivery.sha256 == run.json()["sha256"]
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == ["persons.jsonl", "plans.jsonl", "years.jsonl"]
    missing = cli("download", entitlement.id, "--set", "9", token=token_for(buyer))
    assert missing.code == 3
    assert "version_not_found" in missing.err
