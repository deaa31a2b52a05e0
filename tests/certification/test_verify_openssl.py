"""Runs exactly the shell steps of docs/verify-with-openssl.md against a signed certificate."""

import hashlib
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketplace.certification.signing import (
    build_certificate,
    document_bytes,
    generate_private_key,
    keys_document,
    sign_certificate,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "verify-with-openssl.md"
DATA = b"age,workclass,income\n39,State-gov,<=50K\n50,Self-emp-not-inc,>50K\n"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _doc_steps() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 5
    return "".join(blocks)


def _certificate() -> dict:
    return build_certificate(
        certificate_id="cert_openssl",
        issued_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        artifacts=[
            {
                "name": "adult_synthetic.csv",
                "sha256": hashlib.sha256(DATA).hexdigest(),
                "rows": 2,
                "columns": 3,
            },
            {"name": "other.parquet", "sha256": "ab" * 32, "rows": 5, "columns": 3},
        ],
        evaluation={
            "quality": {"score": 0.8125, "grade": "B", "column_shapes": 0.9, "column_pair_trends": 0.725},
            "plausibility": {
                "score": 1.0,
                "grade": "A",
                "rows_violating_any": 0.0,
                "holdout_rows_violating_any": 0.0,
                "rules": [],
            },
            "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.5012},
            "charts": {"note": 'naïve ünïcode, "quotes", braces {} and a\nnewline', "values": [1e-7, 1e21]},
            "parameters": {"seed": 7},
            "engine": {"name": "synthex-engine", "version": "1.0.0"},
        },
    )


def _run_steps(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", _doc_steps()],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("pretty_keys", [True, False])
def test_documented_openssl_steps_verify_a_genuine_certificate(tmp_path, pretty_keys):
    signer = generate_private_key()
    signed = sign_certificate(_certificate(), signer)
    (tmp_path / "CERT.json").write_bytes(document_bytes(signed))
    document = keys_document(
        [(generate_private_key().public_key(), "retired"), (signer.public_key(), "active")]
    )
    (tmp_path / "keys.json").write_text(json.dumps(document, indent=2 if pretty_keys else None))
    (tmp_path / "adult_synthetic.csv").write_bytes(DATA)

    completed = _run_steps(tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert "Signature Verified Successfully" in completed.stdout
    assert completed.stdout.splitlines()[-1] == (
        f"adult_synthetic.csv ({hashlib.sha256(DATA).hexdigest()}) is covered by the certificate"
    )
    assert (tmp_path / "CERT.jcs").read_bytes() == document_bytes(
        {k: v for k, v in signed.items() if k != "signature"}
    )


def _tamper_figure(signed: dict) -> tuple[bytes, bytes]:
    signed["quality"]["score"] = 0.99
    return document_bytes(signed), DATA


def _tamper_file(signed: dict) -> tuple[bytes, bytes]:
    return document_bytes(signed), DATA + b"41,Private,<=50K\n"


def _unknown_key(signed: dict) -> tuple[bytes, bytes]:
    forged = sign_certificate(signed, generate_private_key())
    return document_bytes(forged), DATA


@pytest.mark.parametrize("tamper", [_tamper_figure, _tamper_file, _unknown_key])
def test_documented_openssl_steps_fail_on_tampering(tmp_path, tamper):
    signer = generate_private_key()
    signed = sign_certificate(_certificate(), signer)
    certificate_bytes, data = tamper(signed)
    (tmp_path / "CERT.json").write_bytes(certificate_bytes)
    (tmp_path / "keys.json").write_text(json.dumps(keys_document([(signer.public_key(), "active")])))
    (tmp_path / "adult_synthetic.csv").write_bytes(data)

    completed = _run_steps(tmp_path)

    assert completed.returncode != 0
    assert "is covered by the certificate" not in completed.stdout
