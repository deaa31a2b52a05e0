"""``synthex jobs watch`` and ``synthex certificate get|verify`` against a live server."""

from __future__ import annotations

import json

import pytest

from marketplace.certification.models import Certificate, Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("status", "error", "code", "message"),
    [
        ("succeeded", "", 0, "succeeded: version 1 of"),
        ("failed", "The train file has no rows.", 1, "failed: The train file has no rows."),
    ],
)
def test_jobs_watch_exits_by_the_outcome(
    cli, provider, token_for, product_factory, version_factory, status, error, code, message
):
    version = version_factory(product_factory(provider, "Watched"), provider)
    job = Job.objects.create(
        kind="certify",
        version=version,
        engine_version="t",
        status=status,
        stage=status,
        progress=100,
        error=error,
    )
    result = cli("jobs", "watch", job.id, "--interval", "0.05", token=token_for(provider))
    assert result.code == code
    assert message in (result.out + result.err)
    as_json = cli("jobs", "watch", job.id, "--json", token=token_for(provider))
    assert (as_json.code, as_json.json()["status"], as_json.json()["error"]) == (code, status, error)


def test_jobs_watch_gives_up_after_its_timeout(cli, provider, token_for, product_factory, version_factory):
    version = version_factory(product_factory(provider, "Slow"), provider)
    job = Job.objects.create(
        kind="certify", version=version, engine_version="t", status="running", stage="privacy", progress=40
    )
    result = cli(
        "jobs", "watch", job.id, "--interval", "0.05", "--timeout", "0.2", "-q", token=token_for(provider)
    )
    assert result.code == 1
    assert f"Job {job.id} is still running (privacy, 40%) after 0.2 s." in result.err


def test_jobs_watch_someone_elses_job_is_not_found(
    cli, provider, buyer, token_for, product_factory, version_factory
):
    version = version_factory(product_factory(provider, "Private"), provider)
    job = Job.objects.create(kind="certify", version=version, engine_version="t")
    result = cli("jobs", "watch", job.id, token=token_for(buyer))
    assert (result.code, result.err.strip()) == (3, "error: Not found. (HTTP 404, code not_found)")


def test_certificate_get_and_verify_offline(cli, provider, certified_factory, tmp_path):
    version, data = certified_factory(provider)
    certificate = Certificate.objects.get(version=version)
    saved = tmp_path / "cert.json"
    got = cli("certificate", "get", certificate.id, "-o", saved)
    assert got.code == 0
    assert saved.read_bytes() == bytes(cli("certificate", "get", certificate.id).out.rstrip("\n").encode())
    keys = tmp_path / "keys.json"
    from marketplace.certification.keys import keys_document

    keys.write_text(json.dumps(keys_document()))
    verified = cli("certificate", "verify", saved, "--data", data, "--keys", keys, "--json")
    assert verified.code == 0, verified.out
    body = verified.json()
    assert body["ok"] is True
    assert body["files"] == [
        {
            "path": str(data),
            "sha256": certificate.document["subject"]["artifacts"][0]["sha256"],
            "artifact": "people",
        }
    ]
    # Keys fetched from the server's /.well-known/synthex/keys.json give the same answer.
    assert cli("certificate", "verify", saved, "--data", data).code == 0


def test_certificate_verify_fails_on_a_tampered_document_or_other_file(
    cli, provider, certified_factory, tmp_path
):
    version, data = certified_factory(provider)
    certificate = Certificate.objects.get(version=version)
    document = json.loads(cli("certificate", "get", certificate.id).out)
    document["quality"]["grade"] = "A+"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    tampered = cli("certificate", "verify", forged)
    assert tampered.code == 1
    assert "FAILED" in tampered.err
    genuine = tmp_path / "genuine.json"
    cli("certificate", "get", certificate.id, "-o", genuine)
    other = tmp_path / "other.csv"
    other.write_bytes(data.read_bytes() + b"1,2\n")
    mismatch = cli("certificate", "verify", genuine, "--data", other, "--json")
    assert mismatch.code == 1
    assert mismatch.json()["ok"] is False
    assert len(mismatch.json()["failures"]) == 1
    not_json = cli("certificate", "verify", other)
    assert not_json.code == 2
