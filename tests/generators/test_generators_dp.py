"""Differentially private generators (MST), the ε ledger, and the engines a deployment hosts (issue 21)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from generators_support import ADULT_CSV, REPO
from rest_framework.test import APIClient

from exchange.ledger.audit import run_audit
from exchange.ledger.models import LedgerEvent
from marketplace.certification.models import Certificate, Job
from marketplace.generators import budget, dp, native
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import EpsilonSpend, GeneratorModel, PrivacyBudget
from marketplace.generators.services import draws

HERE = Path(__file__).resolve().parent
PERMISSIVE = ["synthex_tree", "synthex_mst"]


@pytest.fixture
def adult() -> pd.DataFrame:
    return pd.read_csv(ADULT_CSV, na_values=["?"])


@pytest.fixture
def provider_client(provider: Any) -> APIClient:
    from marketplace.accounts.services import api_token_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(provider)}")
    return client


@pytest.fixture
def fit_native(
    provider: Any,
    generator_product: Any,
    upload: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., GeneratorModel]:
    def make(frame: pd.DataFrame, synthesizer: str = "dp_mst", **options: Any) -> GeneratorModel:
        with django_capture_on_commit_callbacks(execute=True):
            generator = native.create_native_generator(
                generator_product,
                user=provider,
                data=upload(frame, "people.csv"),
                synthesizer=synthesizer,
                **options,
            )
        generator.refresh_from_db()
        return generator

    return make


def _post_fit(client: APIClient, slug: str, frame: pd.DataFrame, tmp_path: Path, **fields: Any) -> Any:
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    with open(path, "rb") as handle:
        return client.post(
            f"/api/v1/products/{slug}/generator/",
            {"mode": "fit", "data": handle, **fields},
            format="multipart",
        )


# -- the pure core --------------------------------------------------------------------------------------------


def test_rho_converts_back_to_at_most_the_requested_epsilon() -> None:
    for epsilon, delta in [(0.1, 1e-6), (1.0, 1e-6), (10.0, 1e-9)]:
        rho = dp.rho_for(epsilon, delta)
        assert epsilon * 0.999 <= dp.epsilon_for_rho(rho, delta) <= epsilon
    assert dp.rho_for(1.0, 1e-6) < dp.rho_for(10.0, 1e-6)


def test_a_dp_fit_composes_its_measurements_within_epsilon(people: pd.DataFrame) -> None:
    metadata = {"columns": {name: {"sdtype": "categorical"} for name in ["workclass", "sex", "class"]}}
    metadata["columns"].update({"age": {"sdtype": "numerical"}, "education-num": {"sdtype": "numerical"}})
    metadata["columns"]["hours-per-week"] = {"sdtype": "numerical"}
    model, accounting = dp.fit(people, metadata, engine="synthex_mst", epsilon=1.0, delta=1e-6)
    assert accounting is not None
    d = len(people.columns)
    # d noisy 1-way marginals, d-1 exponential-mechanism rounds, d-1 noisy 2-way marginals.
    assert len(accounting.steps) == 3 * d - 2
    assert accounting.rho_total == pytest.approx(sum(step["rho"] for step in accounting.steps))
    assert accounting.epsilon <= 1.0
    sample = dp.sample(json.loads(json.dumps(model)), 1000, seed=5)
    assert list(sample.columns) == list(people.columns)
    assert len(sample) == 1000
    assert sample["sex"].isin(["Female", "Male"]).all()
    assert sample["age"].between(people["age"].min(), people["age"].max()).all()
    pd.testing.assert_frame_equal(sample, dp.sample(model, 1000, seed=5))


def test_columns_whose_values_would_be_the_domain_are_refused(people: pd.DataFrame) -> None:
    frame = people.assign(email=[f"p{i}@example.test" for i in range(len(people))])
    metadata = {"columns": {name: {"sdtype": "categorical"} for name in people.columns}}
    metadata["columns"]["email"] = {"sdtype": "email"}
    with pytest.raises(dp.TreeModelError) as refused:
        dp.build_domains(frame, metadata)
    assert refused.value.code == "unsupported_column"


# -- DP fits on Adult, certificate and ledger ----------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [1.0, 10.0])
def test_a_dp_fit_on_adult_states_epsilon_in_the_certificate_and_spends_it_on_the_ledger(
    adult: pd.DataFrame, generator_product: Any, fit_native: Callable[..., GeneratorModel], epsilon: float
) -> None:
    budget.declare_budget(generator_product, 20)
    started = time.monotonic()
    generator = fit_native(adult, epsilon=epsilon, delta=1e-6, target_column="class")
    seconds = time.monotonic() - started
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert (job.status, job.error) == ("succeeded", "")
    assert generator.status == GeneratorModel.Status.READY
    assert seconds < 600  # fit, 26,049-row evaluation sample and certification on a shared 2-core machine
    document = Certificate.objects.get(version=generator.version).document
    statement = document["privacy"]["differential_privacy"]
    assert statement["epsilon"] == epsilon
    assert statement["delta"] == 1e-6
    assert statement["epsilon_composed"] <= epsilon
    assert statement["mechanism"].startswith("MST")
    assert "zCDP" in statement["accountant"]
    assert statement["library"] == f"opendp {dp.opendp_version()}"
    assert statement["covered"]["domain"]["private"] is False
    assert "age" in statement["covered"]["domain"]["read_from_rows_declared_public"]
    assert document["parameters"]["generator"] == {
        "synthesizer": "dp_mst",
        "engine": "synthex_mst",
        "engine_licence": "MIT AND BSD-3-Clause",
    }
    # DP is stated *and* checked: the empirical figures are there as for every product.
    assert 0 < document["quality"]["score"] <= 1
    assert document["privacy"]["grade"] in "ABCDEF"
    assert document["privacy"]["tests"]
    spend = EpsilonSpend.objects.get(version=generator.version)
    event = LedgerEvent.objects.get(leaf_id=spend.ledger_leaf)
    assert event.kind == "privacy.epsilon_spent"
    assert event.refs == {
        "product": str(generator_product.pk),
        "version": str(generator.version.pk),
        "epsilon": budget.epsilon_text(int(epsilon * 1_000_000)),
        "delta": "1e-06",
        "mechanism": "mst",
    }
    assert budget.budget_of(generator_product)["epsilon_spent"] == epsilon
    assert run_audit().ok, run_audit().text()


def test_draws_from_a_tree_generator_are_checked_and_repeatable(
    people: pd.DataFrame, fit_native: Callable[..., GeneratorModel], tmp_path: Path
) -> None:
    generator = fit_native(people, synthesizer="chow_liu")
    assert generator.status == GeneratorModel.Status.READY, generator.error
    first = draws.draw_in_sandbox(generator, rows=500, seed=9, conditions=None, folder=tmp_path)
    again = draws.draw_in_sandbox(generator, rows=500, seed=9, conditions=None, folder=tmp_path)
    assert first.sha256 == again.sha256
    frame = pd.read_parquet(first.path)
    assert list(frame.columns) == list(people.columns) and len(frame) == 500
    women = draws.draw_in_sandbox(generator, rows=50, seed=1, conditions={"sex": "Female"}, folder=tmp_path)
    assert (pd.read_parquet(women.path)["sex"] == "Female").all()


# -- the ε ledger ---------------------------------------------------------------------------------------------


def test_a_fit_past_the_budget_is_refused_with_409_and_spends_nothing(
    provider_client: APIClient, generator_product: Any, people: pd.DataFrame, tmp_path: Path
) -> None:
    first = _post_fit(
        provider_client,
        generator_product.slug,
        people,
        tmp_path,
        synthesizer="dp_mst",
        epsilon=1,
        epsilon_total=1.5,
    )
    assert first.status_code == 202, first.content
    assert first.json()["epsilon_total"] == 1.5 and first.json()["epsilon_spent"] == 1.0
    versions, events = generator_product.versions.count(), LedgerEvent.objects.count()
    refused = _post_fit(
        provider_client, generator_product.slug, people, tmp_path, synthesizer="dp_mst", epsilon=1
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "epsilon_budget_exceeded"
    assert "0.5 left of 1.5" in refused.json()["detail"]
    assert (generator_product.versions.count(), LedgerEvent.objects.count()) == (versions, events)
    assert PrivacyBudget.objects.get(product=generator_product).epsilon_spent_micro == 1_000_000
    shown = provider_client.get(f"/api/v1/products/{generator_product.slug}/").json()
    assert (shown["epsilon_total"], shown["epsilon_spent"]) == (1.5, 1.0)
    assert run_audit().ok


def test_without_a_declared_budget_a_dp_fit_is_refused(
    provider_client: APIClient, generator_product: Any, people: pd.DataFrame, tmp_path: Path
) -> None:
    refused = _post_fit(
        provider_client, generator_product.slug, people, tmp_path, synthesizer="dp_mst", epsilon=1
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "no_privacy_budget")
    assert generator_product.versions.count() == 0


def test_the_budget_is_declared_on_the_ledger_and_never_below_what_was_spent(
    provider_client: APIClient, generator_product: Any, people: pd.DataFrame, tmp_path: Path
) -> None:
    url = f"/api/v1/products/{generator_product.slug}/privacy-budget/"
    assert provider_client.put(url, {"epsilon_total": 2}, format="json").json()["epsilon_total"] == 2.0
    assert (
        _post_fit(
            provider_client, generator_product.slug, people, tmp_path, synthesizer="dp_mst", epsilon=1.5
        ).status_code
        == 202
    )
    lowered = provider_client.put(url, {"epsilon_total": 1}, format="json")
    assert (lowered.status_code, lowered.json()["code"]) == (409, "epsilon_total_below_spent")
    assert provider_client.get(url).json() == {
        "product": generator_product.slug,
        "epsilon_total": 2.0,
        "epsilon_spent": 1.5,
        "epsilon_remaining": 0.5,
    }
    declared = LedgerEvent.objects.filter(kind="privacy.epsilon_budget_declared")
    assert [event.refs["epsilon_total"] for event in declared] == ["2"]


def test_concurrent_fits_cannot_both_take_the_last_of_the_budget(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNTHEX_", "DJANGO_", "DATABASE_URL", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="marketplace.settings.test",
        SYNTHEX_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(REPO),
    )
    completed = subprocess.run(
        [sys.executable, str(HERE / "race_epsilon_budget.py"), "6", "2.5"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["outcomes"] == ["epsilon_budget_exceeded"] * 4 + ["spent"] * 2
    assert (result["spent_micro"], result["spends"], result["events"], result["versions"]) == (
        2_000_000,
        2,
        2,
        2,
    )
    assert result["audit_ok"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"synthesizer": "dp_mst", "epsilon": 0}, "bad_epsilon"),
        ({"synthesizer": "dp_mst", "epsilon": -1}, "bad_epsilon"),
        ({"synthesizer": "dp_mst", "epsilon": 21}, "bad_epsilon"),
        ({"synthesizer": "dp_mst"}, "bad_epsilon"),
        ({"synthesizer": "dp_mst", "epsilon": 1, "delta": 0.01}, "bad_delta"),
        ({"synthesizer": "chow_liu", "epsilon": 1}, "not_differentially_private"),
        ({"synthesizer": "dp_mst", "epsilon": 1, "public_domain": '{"height": [1, 2]}'}, "bad_domain"),
    ],
)
def test_bad_privacy_parameters_are_refused_at_the_edge(
    provider_client: APIClient,
    generator_product: Any,
    people: pd.DataFrame,
    tmp_path: Path,
    fields: dict[str, Any],
    code: str,
) -> None:
    budget.declare_budget(generator_product, 10)
    refused = _post_fit(provider_client, generator_product.slug, people, tmp_path, **fields)
    assert (refused.status_code, refused.json()["code"]) == (400, code)
    assert generator_product.versions.count() == 0
    assert PrivacyBudget.objects.get(product=generator_product).epsilon_spent_micro == 0


# -- engines and licences -------------------------------------------------------------------------------------


def test_the_generator_api_names_its_engine_and_licence(
    provider_client: APIClient, generator_product: Any, people: pd.DataFrame, tmp_path: Path
) -> None:
    made = _post_fit(provider_client, generator_product.slug, people, tmp_path, synthesizer="chow_liu")
    assert made.status_code == 202, made.content
    shown = provider_client.get(f"/api/v1/products/{generator_product.slug}/generator/").json()
    assert (shown["engine"], shown["engine_licence"], shown["engine_is_permissive"]) == (
        "synthex_tree",
        "BSD-3-Clause",
        True,
    )
    assert shown["differential_privacy"] is None


def test_a_deployment_hosting_permissive_engines_only_refuses_sdv(
    settings: Any, provider_client: APIClient, generator_product: Any, people: pd.DataFrame, tmp_path: Path
) -> None:
    settings.SYNTHEX_HOSTED_ENGINES = PERMISSIVE
    refused = _post_fit(
        provider_client, generator_product.slug, people, tmp_path, synthesizer="gaussian_copula"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "engine_not_allowed")
    assert "BUSL-1.1" in refused.json()["detail"]
    assert generator_product.versions.count() == 0
    allowed = _post_fit(provider_client, generator_product.slug, people, tmp_path, synthesizer="chow_liu")
    assert allowed.status_code == 202, allowed.content


def test_hosted_sampling_of_an_sdv_generator_stops_when_the_deployment_drops_sdv(
    settings: Any, generator_product: Any
) -> None:
    generator = GeneratorModel(synthesizer="gaussian_copula", status=GeneratorModel.Status.READY)
    settings.SYNTHEX_HOSTED_ENGINES = PERMISSIVE
    with pytest.raises(GeneratorError) as refused:
        draws.sample_rows(
            generator,
            entitlement_id="ent_x",
            buyer=generator_product.organization.members.first(),
            quota_rows=10,
            rows=1,
            commit_hook="x.y",
        )
    assert (refused.value.code, refused.value.status) == ("engine_not_allowed", 403)


def _key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


def _production_settings(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHEX_", "DJANGO_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="marketplace.settings.production",
        SECRET_KEY="k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="synthex.example",
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/synthex",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        SYNTHEX_CACHE_URL="redis://127.0.0.1:6379/1",
        SYNTHEX_S3_BUCKET="synthex",
        SYNTHEX_SIGNING_KEY_PEM=_key_pem(),
        PYTHONPATH=str(REPO),
        **extra,
    )
    script = "from django.conf import settings; print(','.join(settings.SYNTHEX_HOSTED_ENGINES))"
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_hosts_permissive_engines_unless_an_sdv_licence_is_declared() -> None:
    default = _production_settings({})
    assert default.returncode == 0, default.stderr[-2000:]
    assert default.stdout.strip().splitlines()[-1] == "synthex_tree,synthex_mst"
    licensed = _production_settings({"SYNTHEX_SDV_LICENCE": "DataCebo-ENT-1234"})
    assert licensed.stdout.strip().splitlines()[-1] == "synthex_tree,synthex_mst,sdv"
    unlicensed = _production_settings({"SYNTHEX_HOSTED_ENGINES": "sdv,synthex_mst"})
    assert unlicensed.returncode != 0
    assert "SYNTHEX_SDV_LICENCE" in unlicensed.stderr


# -- the page -------------------------------------------------------------------------------------------------


# Buyers see the generator only when its version passed privacy. OpenDP's noise cannot be seeded (a seeded
# mechanism is not private), and on these 400 rows the verdict fails an honest ε = 2 fit about 2.5 % of the time
# (3 of 120 fits, closest_records and the density attack's AUC; docs/engine.md#false-alarms): one rerun.
@pytest.mark.flaky(reruns=1)
def test_the_fit_form_fits_mst_and_the_page_shows_engine_licence_and_budget(
    provider: Any,
    buyer: Any,
    generator_product: Any,
    people: pd.DataFrame,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    client = Client()
    client.force_login(provider)
    form = client.get(f"/products/{generator_product.slug}/").content.decode()
    assert "What ε means." in form and 'name="epsilon"' in form
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/products/{generator_product.slug}/generator/",
            {
                "mode": "fit",
                "synthesizer": "dp_mst",
                "epsilon": "2",
                "epsilon_total": "5",
                "data": SimpleUploadedFile("people.csv", people.to_csv(index=False).encode()),
            },
        )
    generator = GeneratorModel.objects.get(version__product=generator_product)
    assert (generator.status, generator.error) == (GeneratorModel.Status.READY, "")
    certificate = generator.version.certificates.get()
    privacy = certificate.document["privacy"]
    assert certificate.privacy_passed, [
        (test["name"], test["value"], test["threshold"]) for test in privacy["tests"] if not test["passed"]
    ]
    viewer = Client()
    viewer.force_login(buyer)
    page = viewer.get(f"/products/{generator_product.slug}/").content.decode()
    assert "Synthex MST (differentially private)" in page
    assert "<code>MIT AND BSD-3-Clause</code>" in page
    assert "MST, ε = 2.0, δ = " in page
    assert 'data-epsilon-spent="2.0" data-epsilon-total="5.0"' in page
    assert "spent 2 of 5, 3 remaining" in page
