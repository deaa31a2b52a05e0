"""Certificate signing (JCS + Ed25519), keys.json, artifact matching and the stand-alone verifier CLI."""

import base64
import copy
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from marketplace.certification import verify
from marketplace.certification.signing import (
    CERTIFICATE_SCHEMAS,
    build_certificate,
    canonical_bytes,
    document_bytes,
    generate_private_key,
    key_id,
    keys_document,
    load_keys_document,
    load_private_key_pem,
    load_public_key_pem,
    private_key_to_pem,
    public_key_pem,
    raw_public_key,
    sign_certificate,
    signed_bytes,
    verify_artifact,
    verify_certificate_signature,
)

REPO = Path(__file__).resolve().parents[2]
FIXED_KEY = load_private_key_pem(
    b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n"
)
EVALUATION = {
    "quality": {"score": 0.87, "grade": "B", "column_shapes": 0.91, "column_pair_trends": 0.83},
    "plausibility": {
        "score": 0.97,
        "grade": "A",
        "rows_violating_any": 0.01,
        "holdout_rows_violating_any": 0.0,
        "rules": [],
    },
    "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.503},
    "charts": {
        "marginals": [{"column": "age", "bins": [0, 10, 20], "real": [0.5, 0.5], "synthetic": [0.4, 0.6]}]
    },
    "parameters": {"seed": 7, "holdout_fraction": 0.2},
    "engine": {"name": "synthex-engine", "version": "1.0.0"},
}


def _artifact(tmp_path, name="adult_synthetic.csv", content=b"age,income\n39,<=50K\n"):
    path = tmp_path / name
    path.write_bytes(content)
    return path, {"name": name, "sha256": hashlib.sha256(content).hexdigest(), "rows": 1, "columns": 2}


def _certificate(artifacts):
    return build_certificate(
        certificate_id="cert_01",
        issued_at=datetime(2026, 11, 2, 9, 30, 15, 999, tzinfo=UTC),
        artifacts=artifacts,
        evaluation=EVALUATION,
        subject_extra={"product": "adult-income", "version": 3},
    )


def test_canonical_bytes_follow_rfc_8785():
    document = {"b": [1.0, 1e21, 0.000001, "\u20ac"], "a": {"z": True, "\u00e9": None}, "10": -0.0}
    assert canonical_bytes(document) == '{"10":0,"a":{"z":true,"é":null},"b":[1,1e+21,0.000001,"€"]}'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_canonical_bytes_refuse_non_finite_numbers(value):
    with pytest.raises(ValueError, match="non-finite number"):
        canonical_bytes({"quality": {"score": [value]}})


def test_key_id_is_derived_from_the_raw_public_key():
    public_key = FIXED_KEY.public_key()
    assert key_id(public_key) == "ed25519:" + hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]
    assert key_id(load_public_key_pem(public_key_pem(FIXED_KEY))) == key_id(public_key)


def test_private_key_pem_round_trips_with_and_without_password():
    key = generate_private_key()
    assert raw_public_key(load_private_key_pem(private_key_to_pem(key)).public_key()) == raw_public_key(
        key.public_key()
    )
    encrypted = private_key_to_pem(key, password=b"pw")
    assert b"ENCRYPTED" in encrypted
    assert key_id(load_private_key_pem(encrypted, password=b"pw").public_key()) == key_id(key.public_key())


def test_build_certificate_has_the_design_shape(tmp_path):
    _, artifact = _artifact(tmp_path)
    certificate = _certificate([artifact])
    assert certificate == {
        "schema": "synthex.certificate/v2",
        "id": "cert_01",
        "issued_at": "2026-11-02T09:30:15Z",
        "subject": {"product": "adult-income", "version": 3, "artifacts": [artifact]},
        **EVALUATION,
    }


def test_issued_at_is_converted_to_utc():
    certificate = build_certificate(
        certificate_id="c",
        issued_at=datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
        artifacts=[{"name": "a.csv", "sha256": "0" * 64, "rows": 0, "columns": 0}],
        evaluation=EVALUATION,
    )
    assert certificate["issued_at"] == "2025-12-31T23:00:00Z"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issued_at": datetime(2026, 1, 1)}, "issued_at must be timezone-aware"),
        ({"artifacts": []}, "a certificate covers at least one artifact"),
        ({"artifacts": [{"name": "a", "sha256": "ABC", "rows": 1, "columns": 1}]}, "lowercase hex SHA-256"),
        (
            {"artifacts": [{"name": "a", "sha256": "0" * 64, "rows": -1, "columns": 1}]},
            "non-negative integer rows",
        ),
        (
            {"evaluation": {"quality": {}}},
            "the evaluation lacks plausibility, privacy, charts, parameters, engine",
        ),
        ({"subject_extra": {"artifacts": []}}, "subject_extra cannot replace the artifacts"),
    ],
)
def test_build_certificate_refuses_malformed_input(changes, message):
    arguments = {
        "certificate_id": "c",
        "issued_at": datetime(2026, 1, 1, tzinfo=UTC),
        "artifacts": [{"name": "a.csv", "sha256": "0" * 64, "rows": 0, "columns": 0}],
        "evaluation": EVALUATION,
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        build_certificate(**arguments)


def test_signed_certificate_verifies_and_original_is_untouched(tmp_path):
    _, artifact = _artifact(tmp_path)
    certificate = _certificate([artifact])
    original = copy.deepcopy(certificate)
    signed = sign_certificate(certificate, FIXED_KEY)
    assert certificate == original
    assert signed["signature"]["alg"] == "Ed25519"
    assert signed["signature"]["key_id"] == key_id(FIXED_KEY.public_key())
    signature = base64.b64decode(signed["signature"]["value"])
    FIXED_KEY.public_key().verify(signature, canonical_bytes(original))
    assert signed_bytes(signed) == canonical_bytes(original)
    result = verify_certificate_signature(signed, {key_id(FIXED_KEY.public_key()): FIXED_KEY.public_key()})
    assert (result.ok, result.key_id, result.reasons) == (True, key_id(FIXED_KEY.public_key()), ())


def test_a_v1_certificate_still_verifies(tmp_path):
    _, artifact = _artifact(tmp_path)
    v1 = {**_certificate([artifact]), "schema": "synthex.certificate/v1"}
    signed = sign_certificate(v1, FIXED_KEY)

    assert "synthex.certificate/v1" in CERTIFICATE_SCHEMAS
    assert verify_certificate_signature(signed, keys_document([(FIXED_KEY.public_key(), "active")])).ok


def test_verification_accepts_a_keys_document_with_retired_keys(tmp_path):
    _, artifact = _artifact(tmp_path)
    signed = sign_certificate(_certificate([artifact]), FIXED_KEY)
    document = keys_document(
        [(generate_private_key().public_key(), "active"), (FIXED_KEY.public_key(), "retired")]
    )
    assert verify_certificate_signature(signed, document).ok
    assert verify_certificate_signature(json.loads(document_bytes(signed)), document).ok


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda d: d["quality"].__setitem__("score", 0.99),
            "The signature does not match the document: it was altered or signed by another key.",
        ),
        (
            lambda d: d["subject"]["artifacts"][0].__setitem__("sha256", "1" * 64),
            "The signature does not match the document: it was altered or signed by another key.",
        ),
        (lambda d: d.pop("signature"), "The document has no signature."),
        (
            lambda d: d["signature"].__setitem__("alg", "RS256"),
            "The signature algorithm is 'RS256', not Ed25519.",
        ),
        (
            lambda d: d["signature"].__setitem__("key_id", "ed25519:0000000000000000"),
            "The signing key 'ed25519:0000000000000000' is not among the published keys.",
        ),
        (
            lambda d: d["signature"].__setitem__("value", "not base64!"),
            "The signature value is not valid base64.",
        ),
    ],
)
def test_tampered_certificates_fail_with_a_plain_reason(tmp_path, mutate, reason):
    _, artifact = _artifact(tmp_path)
    signed = sign_certificate(_certificate([artifact]), FIXED_KEY)
    mutate(signed)
    result = verify_certificate_signature(signed, keys_document([(FIXED_KEY.public_key(), "active")]))
    assert result.ok is False
    assert result.reasons == (reason,)


def test_signature_by_another_key_with_a_borrowed_key_id_fails(tmp_path):
    _, artifact = _artifact(tmp_path)
    forged = sign_certificate(_certificate([artifact]), generate_private_key())
    forged["signature"]["key_id"] = key_id(FIXED_KEY.public_key())
    assert not verify_certificate_signature(forged, keys_document([(FIXED_KEY.public_key(), "active")])).ok


def test_nested_member_named_signature_is_refused():
    with pytest.raises(ValueError, match='cannot contain another member named "signature"'):
        sign_certificate({"id": "c", "parameters": {"signature": "x"}}, FIXED_KEY)


@pytest.mark.parametrize(
    ("entry_changes", "message"),
    [
        (
            {"key_id": "ed25519:ffffffffffffffff"},
            "is labelled 'ed25519:ffffffffffffffff' but its key's id is",
        ),
        ({"alg": "RS256"}, "has algorithm 'RS256', expected 'Ed25519'"),
        ({"status": "revoked"}, "has status 'revoked', expected 'active' or 'retired'"),
    ],
)
def test_malformed_keys_documents_are_refused(entry_changes, message):
    document = keys_document([(FIXED_KEY.public_key(), "active")])
    document["keys"][0].update(entry_changes)
    with pytest.raises(ValueError, match=message):
        load_keys_document(document)


def test_keys_document_shape():
    document = keys_document([(FIXED_KEY.public_key(), "active")])
    assert document == {
        "keys": [
            {
                "key_id": key_id(FIXED_KEY.public_key()),
                "alg": "Ed25519",
                "public_key_pem": public_key_pem(FIXED_KEY),
                "status": "active",
            }
        ]
    }
    assert list(load_keys_document(document)) == [key_id(FIXED_KEY.public_key())]


def test_verify_artifact_matches_by_sha256_and_name(tmp_path):
    path, artifact = _artifact(tmp_path)
    other_path, other = _artifact(tmp_path, "other.csv", b"x\n1\n")
    certificate = _certificate([artifact, other])
    match = verify_artifact(certificate, None, other_path)
    assert (match.ok, match.artifact_name, match.sha256) == (True, "other.csv", other["sha256"])
    assert verify_artifact(certificate, "adult_synthetic.csv", path).ok
    wrong_name = verify_artifact(certificate, "adult_synthetic.csv", other_path)
    assert wrong_name.ok is False
    assert wrong_name.reasons == (
        f"other.csv (SHA-256 {other['sha256']}) does not match the artifact 'adult_synthetic.csv'.",
    )
    assert verify_artifact(certificate, "missing.csv", path).reasons == (
        "The certificate has no artifact named 'missing.csv'.",
    )


def _write_signed(tmp_path, artifacts, key=FIXED_KEY):
    certificate_path = tmp_path / "CERT.json"
    certificate_path.write_bytes(document_bytes(sign_certificate(_certificate(artifacts), key)))
    keys_path = tmp_path / "keys.json"
    keys_path.write_text(json.dumps(keys_document([(FIXED_KEY.public_key(), "active")])))
    return certificate_path, keys_path


def test_cli_exits_0_when_signature_and_files_hold(tmp_path, capsys):
    path, artifact = _artifact(tmp_path)
    certificate_path, keys_path = _write_signed(tmp_path, [artifact])
    status = verify.main([str(certificate_path), "--keys", str(keys_path), "--data", str(path)])
    output = capsys.readouterr()
    assert status == 0
    assert (
        output.out.splitlines()[-1]
        == f"OK: certificate 'cert_01' is signed by {key_id(FIXED_KEY.public_key())}"
    )
    assert output.err == ""


def test_cli_exits_1_with_one_reason_per_failure(tmp_path, capsys):
    _, artifact = _artifact(tmp_path)
    stranger = tmp_path / "stranger.csv"
    stranger.write_bytes(b"not certified\n")
    certificate_path, keys_path = _write_signed(tmp_path, [artifact], key=generate_private_key())
    status = verify.main([str(certificate_path), "--keys", str(keys_path), "--data", str(stranger)])
    errors = capsys.readouterr().err.splitlines()
    stranger_sha256 = hashlib.sha256(stranger.read_bytes()).hexdigest()
    assert status == 1
    assert len(errors) == 2
    assert errors[0].startswith("FAILED: The signing key 'ed25519:")
    assert errors[1] == (
        f"FAILED: stranger.csv (SHA-256 {stranger_sha256}) does not match any artifact of the certificate."
    )


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["{cert}"],
        ["{cert}", "--keys", "{keys}", "--key-url", "https://example.invalid/keys.json"],
        ["{missing}", "--keys", "{keys}"],
        ["{cert}", "--keys", "{missing}"],
        ["{cert}", "--keys", "{keys}", "--data", "{missing}"],
        ["{cert}", "--keys", "{cert}"],
        ["{cert}", "--key-url", "ftp://example.invalid/keys.json"],
    ],
)
def test_cli_exits_2_on_usage_errors_and_unreadable_input(tmp_path, arguments, capsys):
    _, artifact = _artifact(tmp_path)
    certificate_path, keys_path = _write_signed(tmp_path, [artifact])
    names = {"cert": certificate_path, "keys": keys_path, "missing": tmp_path / "missing.json"}
    assert verify.main([argument.format(**names) for argument in arguments]) == 2
    assert capsys.readouterr().err != ""


def test_cli_fetches_keys_from_a_url(tmp_path, capsys):
    path, artifact = _artifact(tmp_path)
    certificate_path, keys_path = _write_signed(tmp_path, [artifact])
    body = keys_path.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/.well-known/synthex/keys.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *arguments):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/.well-known/synthex/keys.json"
        assert verify.main([str(certificate_path), "--key-url", url, "--data", str(path)]) == 0
        assert verify.main([str(certificate_path), "--key-url", url.replace("keys.json", "nope")]) == 2
    finally:
        server.shutdown()
        server.server_close()
    assert "Cannot fetch" in capsys.readouterr().err


def test_cli_runs_in_a_fresh_interpreter_without_django(tmp_path):
    path, artifact = _artifact(tmp_path)
    certificate_path, keys_path = _write_signed(tmp_path, [artifact])
    probe = (
        "import sys, runpy; sys.argv = sys.argv[1:];"
        "code = 0\n"
        "try:\n runpy.run_module('marketplace.certification.verify', run_name='__main__')\n"
        "except SystemExit as exit_request:\n code = exit_request.code\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('django', 'rest_framework', 'celery'))\n"
        "print('FRAMEWORKS', loaded); sys.exit(code)"
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "verify",
            str(certificate_path),
            "--keys",
            str(keys_path),
            "--data",
            str(path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "FRAMEWORKS []" in completed.stdout
