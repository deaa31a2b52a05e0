"""Certification through the platform: queue → engine → signed certificate → verification four ways."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError

from marketplace.catalog.models import FileRole, Product
from marketplace.certification import keys, services, signing
from marketplace.certification.models import Certificate, Job
from marketplace.certification.submission import submit_version
from marketplace.certification.tasks import certify_version_task

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def certified(provider, product_factory, version_factory, django_capture_on_commit_callbacks):
    product = product_factory(provider, "Certified people")
    with django_capture_on_commit_callbacks(execute=True):
        version = version_factory(product, provider, submit=True, target="class")
    version.refresh_from_db()
    return version


def synthetic_bytes(version) -> bytes:
    item = version.files.get(role=FileRole.SYNTHETIC)
    with storages["default"].open(item.storage_name, "rb") as handle:
        return handle.read()


def test_submitting_a_version_certifies_it_and_lists_its_grades(certified):
    job = certified.jobs.get()
    assert (job.status, job.stage, job.progress, job.error) == ("succeeded", "done", 100, "")
    assert certified.status == "certified"
    certificate = certified.certificates.get()
    document = certificate.document
    assert document["schema"] == "synthex.certificate/v2"
    assert document["engine"]["version"] == services.ENGINE_VERSION == "2.0.0"
    assert document["subject"]["artifacts"] == [
        {"name": "people", "sha256": certified.files.get(role="synthetic").sha256, "rows": 800, "columns": 6}
    ]
    assert document["quality"]["grade"] in "ABCDF"
    assert document["privacy"]["baseline"] == "holdout"
    assert document["quality"]["ml_efficacy"]["target"] == "class"
    product = Product.objects.get(pk=certified.product_id)
    assert product.quality_grade == certificate.quality_grade
    assert product.privacy_grade == certificate.privacy_grade
    assert product.quality_score == pytest.approx(document["quality"]["score"])


def test_recertifying_a_version_with_an_engine_1_certificate_makes_a_new_v2_one(certified):
    current = certified.certificates.get()
    old_document = signing.sign_certificate(
        {
            **current.document,
            "schema": "synthex.certificate/v1",
            "engine": {"name": "synthex-engine", "version": "1.0.0"},
        },
        keys.active_private_key(),
    )
    Certificate.objects.filter(pk=current.pk).update(
        engine_version="1.0.0", document=old_document, signed_bytes=signing.signed_bytes(old_document)
    )
    sections = ("quality", "plausibility", "privacy", "charts", "parameters", "engine")
    evaluation = {name: current.document[name] for name in sections}

    renewed = services.issue_certificate(
        certified, evaluation, list(certified.files.filter(role=FileRole.SYNTHETIC))
    )

    assert renewed.pk != current.pk
    assert renewed.document["schema"] == "synthex.certificate/v2"
    assert Certificate.objects.get(pk=current.pk).document == old_document
    assert signing.verify_certificate_signature(old_document, keys.keys_document()).ok
    assert signing.verify_certificate_signature(renewed.document, keys.keys_document()).ok
    assert certified.certificates.count() == 2


def test_certificate_never_contains_reference_rows(certified, small_tables):
    text = json.dumps(certified.certificates.get().document)
    for role in ("train", "holdout"):
        for row in small_tables[role].head(50).itertuples(index=False):
            assert ",".join(str(v) for v in row) not in text


def test_a_retried_task_never_makes_a_second_certificate(certified):
    job = certified.jobs.get()
    certify_version_task.apply(args=[str(job.pk)])
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)  # as if a worker died mid-way
    certify_version_task.apply(args=[str(job.pk)])
    assert Certificate.objects.filter(version=certified).count() == 1
    assert services.request_certification(certified) == job


def test_version_without_reference_data_fails_with_a_plain_message(
    provider, product_factory, version_factory, django_capture_on_commit_callbacks
):
    product = product_factory(provider, "No reference")
    with django_capture_on_commit_callbacks(execute=True):
        version = version_factory(product, provider, submit=True, with_reference=False)
    version.refresh_from_db()
    job = version.jobs.get()
    assert job.status == "failed"
    assert "no reference train file" in job.error
    assert version.status == "failed"
    assert not Certificate.objects.exists()


def test_job_api_shows_progress_to_members_only(certified, provider, buyer, api_client_for):
    job = certified.jobs.get()
    body = api_client_for(provider).get(f"/api/v1/jobs/{job.pk}/").json()
    assert (body["status"], body["stage"], body["progress"], body["error"]) == ("succeeded", "done", 100, "")
    assert api_client_for(buyer).get(f"/api/v1/jobs/{job.pk}/").status_code == 404


def test_certificate_api_serves_canonical_signed_bytes(certified, client):
    certificate = certified.certificates.get()
    response = client.get(f"/api/v1/certificates/{certificate.id}/")
    assert response.status_code == 200
    assert response["Synthex-Certificate-Status"] == "valid"
    assert response.content == signing.document_bytes(certificate.document)
    jcs = client.get(f"/api/v1/certificates/{certificate.id}/?as=jcs").content
    assert jcs == signing.signed_bytes(certificate.document)


def test_verify_api_checks_signature_file_and_tampering(certified, client):
    document = certified.certificates.get().document
    data = io.BytesIO(synthetic_bytes(certified))
    data.name = "people.csv"
    good = client.post("/api/v1/certificates/verify/", {"certificate": json.dumps(document), "data": data})
    assert good.json()["valid"] is True
    assert good.json()["files"][0]["matches"] is True
    tampered = {**document, "quality": {**document["quality"], "grade": "A", "score": 0.99}}
    bad = client.post(
        "/api/v1/certificates/verify/", {"certificate": tampered}, content_type="application/json"
    )
    assert bad.json()["valid"] is False
    assert bad.json()["signature_valid"] is False
    other = io.BytesIO(b"age,workclass\n1,x\n")
    other.name = "other.csv"
    wrong_file = client.post(
        "/api/v1/certificates/verify/", {"certificate": json.dumps(document), "data": other}
    )
    assert wrong_file.json()["valid"] is False
    assert client.post("/api/v1/certificates/verify/", {"certificate": "not json"}).status_code == 400


def test_verify_page_accepts_a_certificate_and_a_file(certified, client):
    document = certified.certificates.get().document
    cert_file = io.BytesIO(signing.document_bytes(document))
    cert_file.name = "cert.json"
    data = io.BytesIO(synthetic_bytes(certified))
    data.name = "people.csv"
    page = client.post("/certificates/verify/", {"certificate": cert_file, "data": data}).content.decode()
    assert "✔ Valid" in page
    assert "matches artifact people" in page
    junk = io.BytesIO(b"[1, 2]")
    junk.name = "junk.json"
    response = client.post("/certificates/verify/", {"certificate": junk})
    assert response.status_code == 400
    assert "not a certificate" in response.content.decode()


def test_revocation_is_signed_and_shown(certified, client):
    certificate = certified.certificates.get()
    revocation = services.revoke_certificate(certificate, reason="The provider found a labelling error.")
    assert signing.verify_document_signature(revocation.document, keys.keys_document()).ok
    assert client.get(f"/api/v1/certificates/{certificate.id}/")["Synthex-Certificate-Status"] == "revoked"
    assert client.get(f"/api/v1/certificates/{certificate.id}/status/").json()["status"] == "revoked"
    assert "Revoked" in client.get(f"/certificates/{certificate.id}/").content.decode()
    verdict = client.post(
        "/api/v1/certificates/verify/", {"certificate": certificate.document}, content_type="application/json"
    ).json()
    assert verdict["valid"] is False and verdict["revoked"] is True
    assert Product.objects.get(pk=certified.product_id).quality_grade == ""


def test_keys_json_keeps_retired_keys_so_old_certificates_verify(certified, client):
    certificate = certified.certificates.get()
    old_key = certificate.key_id
    keys.rotate_signing_key()
    published = client.get("/.well-known/synthex/keys.json").json()["keys"]
    statuses = {entry["key_id"]: entry["status"] for entry in published}
    assert statuses[old_key] == "retired"
    assert list(statuses.values()).count("active") == 1
    assert signing.verify_certificate_signature(certificate.document, {"keys": published}).ok


def test_verify_certificate_command_and_standalone_verifier(certified, tmp_path, capsys):
    certificate = certified.certificates.get()
    cert_path = tmp_path / "cert.json"
    cert_path.write_bytes(signing.document_bytes(certificate.document))
    data_path = tmp_path / "people.csv"
    data_path.write_bytes(synthetic_bytes(certified))
    call_command("verify_certificate", str(cert_path), "--data", str(data_path))
    assert "OK: certificate" in capsys.readouterr().out
    other = tmp_path / "other.csv"
    other.write_bytes(b"a\n1\n")
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_certificate", str(cert_path), "--data", str(other))
    assert exit_info.value.code == 1
    with pytest.raises(CommandError, match="not JSON"):
        bad = tmp_path / "bad.json"
        bad.write_text("{")
        call_command("verify_certificate", str(bad))
    keys_path = tmp_path / "keys.json"
    keys_path.write_text(json.dumps(keys.keys_document()))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "marketplace.certification.verify",
            str(cert_path),
            "--keys",
            str(keys_path),
            "--data",
            str(data_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_certify_command_signs_local_files(small_tables, tmp_path, capsys, db):
    for role, frame in small_tables.items():
        frame.to_csv(tmp_path / f"{role}.csv", index=False)
    output = tmp_path / "CERT.json"
    call_command(
        "certify",
        "--synthetic",
        str(tmp_path / "synthetic.csv"),
        "--train",
        str(tmp_path / "train.csv"),
        "--holdout",
        str(tmp_path / "holdout.csv"),
        "--target",
        "class",
        "--output",
        str(output),
    )
    document = json.loads(output.read_bytes())
    assert document["subject"]["artifacts"][0]["sha256"] == signing.sha256_file(tmp_path / "synthetic.csv")
    assert signing.verify_certificate_signature(document, keys.keys_document()).ok
    assert "quality" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no such file"):
        call_command(
            "certify",
            "--synthetic",
            "missing.csv",
            "--train",
            str(tmp_path / "train.csv"),
            "--output",
            str(output),
        )


def test_large_tables_are_certified_on_a_stated_uniform_sample(
    provider, product_factory, version_factory, django_capture_on_commit_callbacks, settings
):
    settings.SYNTHEX_CERTIFY_MAX_ROWS = 300
    product = product_factory(provider, "Sampled people")
    with django_capture_on_commit_callbacks(execute=True):
        version = version_factory(product, provider, submit=True)
    document = version.certificates.get().document
    assert document["subject"]["sampling"] == {
        "method": "uniform",
        "seed": version.pk,
        "tables": {
            "synthetic": {"rows": 800, "sampled_rows": 300},
            "train": {"rows": 800, "sampled_rows": 300},
        },
    }
    assert document["subject"]["artifacts"][0]["rows"] == 800
    assert document["parameters"]["rows"]["input"]["synthetic"] == 300


def test_sample_table_is_uniform_bounded_and_deterministic(tmp_path):
    import numpy as np
    import pandas as pd

    from marketplace.catalog.ingest import sample_table

    path = tmp_path / "big.csv"
    pd.DataFrame({"n": np.arange(200_000), "label": ["x", "y"] * 100_000}).to_csv(path, index=False)
    sample, total = sample_table(
        path, "csv", max_rows=2000, seed=3, dtypes={"n": "integer", "label": "string"}, batch_rows=10_000
    )
    again, _ = sample_table(
        path, "csv", max_rows=2000, seed=3, dtypes={"n": "integer", "label": "string"}, batch_rows=10_000
    )
    assert total == 200_000
    assert len(sample) == 2000
    assert sample["n"].is_unique
    assert sample["n"].tolist() == again["n"].tolist()
    # Every part of the file is represented: each tenth holds about a tenth of the sample.
    counts = np.histogram(sample["n"], bins=10, range=(0, 200_000))[0]
    assert counts.min() > 140 and counts.max() < 260


@pytest.mark.slow
def test_sampling_a_file_larger_than_the_memory_budget_stays_bounded(tmp_path):
    """A worker limited to far less memory than the table needs whole still reads its certified sample."""
    import numpy as np
    import pandas as pd

    path = tmp_path / "wide.csv"
    rng = np.random.default_rng(0)
    block = pd.DataFrame(
        {
            "age": rng.integers(17, 90, 200_000),
            "hours": rng.integers(1, 99, 200_000),
            "gain": rng.random(200_000) * 1e5,
            "job": rng.choice(["clerk", "sales", "tech", "farming"], 200_000),
            "class": rng.choice(["<=50K", ">50K"], 200_000),
        }
    )
    with path.open("w") as handle:
        block.to_csv(handle, index=False)
        for _ in range(14):  # 3M rows, ~120 MB on disk, ~700 MB as a DataFrame
            block.to_csv(handle, index=False, header=False)
    dtypes = {"age": "integer", "hours": "integer", "gain": "float", "job": "string", "class": "string"}

    def grown_mb(code: str) -> str:
        script = (
            f"import sys; sys.path.insert(0, {str(REPO)!r}); import pandas as pd, pyarrow.csv\n"
            # VmHWM is this process's own peak; ru_maxrss would carry over the (large) pytest parent's.
            "def peak_kb():\n"
            "    lines = open('/proc/self/status').read().splitlines()\n"
            "    return int(next(x for x in lines if x.startswith('VmHWM')).split()[1])\n"
            "from marketplace.catalog.ingest import sample_table\n"
            "before = peak_kb()\n"
            f"{code}\n"
            "print(result, (peak_kb() - before) // 1024)"
        )
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
        )
        return run.stdout.strip()

    sampled = grown_mb(
        f"frame, total = sample_table({str(path)!r}, 'csv', max_rows=50_000, seed=1, dtypes={dtypes!r}); "
        "result = f'{total}/{len(frame)}'"
    )
    whole = grown_mb(f"result = len(pd.read_csv({str(path)!r}))")
    counts, sampled_mb = sampled.split()
    print(f"peak growth: sampled {sampled_mb} MB, whole {whole.split()[1]} MB")
    _, whole_mb = whole.split()
    assert counts == "3000000/50000"
    assert int(sampled_mb) < 160, (sampled, whole)
    assert int(sampled_mb) * 2 < int(whole_mb), (sampled, whole)


def test_a_swapped_stored_file_is_refused_and_certifies_nothing(
    provider, product_factory, version_factory, django_capture_on_commit_callbacks
):
    version = version_factory(product_factory(provider, "Swapped file"), provider)
    item = version.files.get(role=FileRole.SYNTHETIC)
    store = storages[item.storage_alias]
    original = synthetic_bytes(version)
    # Other tests store the same bytes under the same content-addressed name: put them back afterwards.
    store.delete(item.storage_name)
    assert store.save(item.storage_name, ContentFile(original[: original.rindex(b"\n", 0, -1) + 1])) == (
        item.storage_name
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            submit_version(version, user=provider)
    finally:
        store.delete(item.storage_name)
        store.save(item.storage_name, ContentFile(original))
    version.refresh_from_db()
    job = version.jobs.get()
    assert (job.status, job.error) == (
        "failed",
        "The stored synthetic file people.csv no longer matches the SHA-256 recorded at upload; it was not "
        "used. Contact the team.",
    )
    assert version.status == "failed"
    assert not Certificate.objects.exists()
