"""Platform-fitted HMA generators on related tables: fit with progress, certificate, entity draws, refusals."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.files.storage import storages
from hma_data import chain, csv_files, three_tables, two_tables

from exchange.delivery.services import grant_entitlement
from marketplace.catalog.models import ProductVersion, VersionFile
from marketplace.certification.models import Certificate, Job
from marketplace.generators import hma, relational
from marketplace.generators.models import GeneratorModel, SampleDraw
from marketplace.generators.schema import OutputInvalid
from marketplace.generators.services.draws import rows_with_spares

pytestmark = pytest.mark.django_db


@pytest.fixture
def generator_product(provider: Any, product_factory: Any) -> Any:
    from marketplace.catalog.services import LicensePrice

    return product_factory(
        provider, "RAND visits generator", kind="generator", licenses=[LicensePrice("standard", 900, "USD")]
    )


def _post(client: Any, product: Any, tables: dict[str, pd.DataFrame], **fields: Any) -> Any:
    body: dict[str, Any] = {"tables": csv_files(tables)}
    body |= {key: json.dumps(value) for key, value in fields.items()}
    return client.post(f"/api/v1/products/{product.slug}/generator/tables/", body, format="multipart")


def _nothing_stored() -> None:
    assert ProductVersion.objects.count() == 0
    assert GeneratorModel.objects.count() == 0
    assert VersionFile.objects.count() == 0
    assert Job.objects.count() == 0


# -- the pure part ---------------------------------------------------------------------------------------------


def test_hma_refuses_a_chain_deeper_than_one_parent_and_names_it() -> None:
    tables, described = chain()
    with pytest.raises(hma.HmaRefused) as refused:
        hma.plan_fit(tables, described)
    assert refused.value.code == "schema_too_deep"
    assert "plans → persons → years" in refused.value.message


def test_draws_with_the_same_seed_repeat_and_other_seeds_differ() -> None:
    tables, described = two_tables(200)
    model = hma.fit_hma(tables, described, seed=1, progress=lambda stage, percent: None)
    first = hma.sample_entities(model, entity="persons", rows=25, seed=5)
    again = hma.sample_entities(model, entity="persons", rows=25, seed=5)
    other = hma.sample_entities(model, entity="persons", rows=25, seed=6)
    assert len(first["persons"]) == 25
    pd.testing.assert_frame_equal(first["years"], again["years"])
    assert not first["persons"].equals(other["persons"])


REPO = Path(__file__).resolve().parents[2]
# The root tables as SDV 2.0's sampler finds them (all tables, as a set, minus those with a parent), in the
# order three_tables' metadata lists the tables; printed by each fresh interpreter below.
_ROOTS = 'print(",".join(set(["plans", "persons", "years"]) - set(["years"])))'
# Fits three_tables (plans → years ← persons) and draws a set in a fresh interpreter; prints the roots'
# order and the set's digest.
_FIT_AND_DRAW = f"""
import hashlib
import pandas as pd
from hma_data import three_tables
from marketplace.generators import hma

tables, described = three_tables(80)
assert list(described["tables"]) == ["plans", "persons", "years"]
{_ROOTS}
model = hma.fit_hma(tables, described, seed=1, progress=lambda stage, percent: None)
drawn = hma.sample_entities(model, entity="persons", rows=40, seed=5)
digest = hashlib.sha256()
for name in sorted(drawn):
    digest.update(name.encode() + pd.util.hash_pandas_object(drawn[name], index=False).to_numpy().tobytes())
print(digest.hexdigest())
"""


def _in_fresh_process(code: str, hash_seed: int) -> str:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "relational")]),
        "PYTHONHASHSEED": str(hash_seed),
    }
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, timeout=240
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return " ".join(completed.stdout.split())


@pytest.mark.slow
def test_a_fit_and_draw_do_not_depend_on_the_processs_string_hash_seed() -> None:
    """SDV's HMA sampler loops over its root tables as a set of names, whose order follows the
    interpreter's string hash seed (random per process; the sandbox runs ``python -I``); the child of two
    roots was drawn under whichever came first (the demo's years under persons or under plans: relational
    grade D or C). Two processes whose sets iterate in opposite orders must draw one set."""
    orders: dict[str, int] = {}
    for hash_seed in range(32):
        order = _in_fresh_process(_ROOTS, hash_seed)
        orders.setdefault(order, hash_seed)
        if len(orders) == 2:
            break
    assert len(orders) == 2, orders
    draws = {order: _in_fresh_process(_FIT_AND_DRAW, seed).split() for order, seed in orders.items()}
    assert sorted(roots for roots, _ in draws.values()) == sorted(orders)
    assert len({digest for _, digest in draws.values()}) == 1, draws


def _zip(tables: dict[str, pd.DataFrame], compression: int = zipfile.ZIP_STORED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, frame in tables.items():
            archive.writestr(f"{name}.parquet", frame.to_parquet(index=False))
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda t: {"persons": t["persons"]}, "wrong_tables"),
        (lambda t: {**t, "persons": t["persons"].iloc[:-1]}, "broken_set"),
        (lambda t: {**t, "persons": t["persons"].drop(columns=["lpi"])}, "wrong_columns"),
    ],
)
def test_a_set_the_model_wrote_is_checked_before_it_leaves_the_sandbox(change: Any, code: str) -> None:
    tables, described = two_tables(60)
    good = _zip(tables)
    assert len(hma.read_checked_set(good, described, entity="persons", rows=60)["years"]) == len(
        tables["years"]
    )
    with pytest.raises(OutputInvalid) as refused:
        hma.read_checked_set(
            _zip(change(tables)), described, entity="persons", rows=len(change(tables)["persons"])
        )
    assert refused.value.code == code


def test_a_compressed_member_or_a_wrong_entity_count_is_refused() -> None:
    tables, described = two_tables(60)
    with pytest.raises(OutputInvalid, match="compressed"):
        hma.read_checked_set(_zip(tables, zipfile.ZIP_DEFLATED), described, entity="persons", rows=60)
    with pytest.raises(OutputInvalid, match="60 rows; 61 were requested"):
        hma.read_checked_set(_zip(tables), described, entity="persons", rows=61)


# -- fit, certificate, draws (API) ----------------------------------------------------------------------------


# Failed once in the full suite under two xdist workers (job failed "at 0 %": every failed job read 0 % until
# finish_job kept the progress reached, so where it failed is unknown). Not reproduced: tests/relational with
# -n 2 twice side by side (4 workers, load ~7), again with the heartbeat every second (lease 4 s; in tests
# its UPDATE always gets "database table is locked", caught in its thread), and the job's fit, draw and
# certificate on 40 random splits outside Django. Workers have their own var dir, keys and storage; the fit
# uses no sandbox. One rerun; a failure now names the job's error and the progress it reached.
@pytest.mark.flaky(reruns=1)
def test_a_three_table_hma_fit_reports_progress_certifies_every_table_and_draws_entity_sets(
    provider: Any,
    buyer: Any,
    generator_product: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stages: list[tuple[str, int]] = []
    writer = relational._job_progress

    def recording(job: Job) -> Any:
        write = writer(job)

        def both(stage: str, percent: int) -> None:
            stages.append((stage, percent))
            write(stage, percent)

        return both

    monkeypatch.setattr(relational, "_job_progress", recording)
    tables, _ = three_tables(300)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api_client_for(provider), generator_product, tables, row_quotas={"standard": 100})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["entity_table"], sorted(body["tables"])) == ("persons", ["persons", "plans", "years"])
    generator = GeneratorModel.objects.get(version__product=generator_product)
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert (job.status, job.progress, job.error, generator.status) == ("succeeded", 100, "", "ready"), (
        f"fit job {job.status} at {job.progress} %: {job.error!r}; stages {stages}"
    )
    assert any(stage.startswith("learning relationships (2/2)") for stage, _ in stages)
    percents = [percent for _, percent in stages]
    assert percents == sorted(percents) and percents[-1] == 96
    assert (generator.training_rows, generator.holdout_rows) == (240, 60)

    files = {(f.role, f.table_name): f for f in generator.version.files.all()}
    held = pd.read_parquet(storages["reference"].path(files[("holdout", "persons")].storage_name))
    held_years = pd.read_parquet(storages["reference"].path(files[("holdout", "years")].storage_name))
    all_years = tables["years"][tables["years"]["person_id"].isin(held["person_id"])]
    assert len(held_years) == len(all_years)  # every held-out person's years went with them

    document = Certificate.objects.get(version=generator.version).document
    names = [artifact["name"] for artifact in document["subject"]["artifacts"]]
    assert names == ["persons", "plans", "years", "generator.hma"]
    assert document["subject"]["artifacts"][-1]["sha256"] == generator.sha256
    assert {"referential_integrity", "cardinality_shape_similarity", "reference"} <= set(
        document["relational"]
    )
    assert "entity_level" in document["privacy"]
    assert generator.version.status == "certified"

    entitlement = grant_entitlement(
        buyer=buyer, version=generator.version, license_code="standard", source="order:ord_hma"
    )
    client = api_client_for(buyer)
    url = f"/api/v1/entitlements/{entitlement.id}/samples/"
    refused = client.post(url, {"rows": 10, "conditions": {"lpi": 1.0}}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "conditions_not_supported")
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(url, {"rows": 20, "seed": 4}, format="json")
    assert queued.status_code == 202, queued.json()
    draw = SampleDraw.objects.get(pk=queued.json()["id"])
    assert (draw.status, draw.error, draw.rows) == ("succeeded", "", 20), draw.error
    with storages["default"].open(draw.storage_name, "rb") as handle:
        drawn = hma.read_checked_set(
            io.BytesIO(handle.read()), generator.sdv_metadata, entity="persons", rows=rows_with_spares(20)
        )
    assert set(drawn) == {"plans", "persons", "years"}
    assert drawn["years"]["person_id"].isin(drawn["persons"]["person_id"]).all()
    over = client.post(url, {"rows": 81}, format="json")
    assert (over.status_code, over.json()["code"]) == (409, "quota_exceeded")
    assert "80 rows left" in over.json()["detail"]


def _orphans() -> tuple[dict[str, pd.DataFrame], dict]:
    tables, described = two_tables(80)
    return {**tables, "years": tables["years"].assign(person_id=1)}, described


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (chain, "schema_too_deep"),
        (lambda: ({"persons": two_tables(80)[0]["persons"]}, None), "too_few_tables"),
        (lambda: _orphans(), "orphan_rows"),
        (lambda: two_tables(30), "too_few_rows"),
    ],
)
def test_sets_hma_cannot_take_are_refused_with_nothing_left_behind(
    provider: Any, generator_product: Any, api_client_for: Any, make: Any, code: str
) -> None:
    tables, described = make()
    fields = {"metadata": described} if described is not None else {}
    response = _post(api_client_for(provider), generator_product, tables, **fields)
    assert response.status_code == 400, response.json()
    assert code in json.dumps(response.json())
    _nothing_stored()


def test_a_dataset_product_or_another_providers_product_is_refused(
    provider: Any, buyer: Any, product_factory: Any, generator_product: Any, api_client_for: Any
) -> None:
    tables, described = two_tables(80)
    dataset = product_factory(provider, "RAND tables")
    refused = _post(api_client_for(provider), dataset, tables, metadata=described)
    assert (refused.status_code, refused.json()["code"]) == (400, "not_a_generator_product")
    foreign = _post(api_client_for(buyer), generator_product, tables, metadata=described)
    assert foreign.status_code in (403, 404)
    _nothing_stored()


# -- the page ---------------------------------------------------------------------------------------------------


def test_the_generator_panel_fits_hma_from_its_form_and_shows_the_tables(
    client: Any, provider: Any, generator_product: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(provider)
    page = client.get(f"/products/{generator_product.slug}/")
    assert 'id="hma-form"' in page.content.decode()
    tables, described = two_tables(200)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/products/{generator_product.slug}/generator/tables/",
            {"tables": csv_files(tables), "metadata": json.dumps(described)},
        )
    assert response.status_code == 302
    generator = GeneratorModel.objects.get(version__product=generator_product)
    assert (generator.synthesizer, generator.status) == ("hma", "ready")
    text = client.get(f"/products/{generator_product.slug}/").content.decode()
    assert "<code>years.person_id</code> → <code>persons</code>" in text
    assert "rows of <code>persons</code>" in text


def test_the_form_shows_why_a_set_is_refused_and_stores_nothing(
    client: Any, provider: Any, generator_product: Any
) -> None:
    client.force_login(provider)
    tables, described = chain(80)
    response = client.post(
        f"/products/{generator_product.slug}/generator/tables/",
        {"tables": csv_files(tables), "metadata": json.dumps(described)},
        follow=True,
    )
    assert "HMA models one level of parents and children" in response.content.decode()
    _nothing_stored()
