"""``synthex sample``: queue a draw, follow it, download its file and check its SHA-256.

No generator can be fitted within a CLI test's time, so the server here is an httpx mock that answers as
``exchange/delivery/samples.py`` does (202 with the draw, then the draw, then its file).
"""

from __future__ import annotations

import hashlib
import json
from functools import partial

import httpx
import pytest
from synthex_client import cli as cli_module
from synthex_client.api import SynthexClient

PAYLOAD = b"PAR1 pretend parquet bytes PAR1"


def mock_server(final_status: str, served: bytes, requests: list[tuple[str, str]]) -> httpx.MockTransport:
    polls = iter(["queued", "running", final_status])

    def draw(status: str) -> dict:
        return {
            "id": "drw_1", "entitlement_id": "ent_1", "rows": 500, "seed_sha256": "0" * 64, "conditions": {},
            "status": status, "progress": 100 if status == "succeeded" else 30, "error": "boom" if status == "failed" else "",
            "error_code": "", "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size_bytes": len(PAYLOAD),
            "created_at": "2026-11-24T00:00:00Z", "finished_at": None,
        }  # fmt: skip

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append((request.method, str(request.url)))
        if request.method == "POST":
            assert json.loads(request.content) == {"rows": 500, "seed": 7, "conditions": {"sex": "Female"}}
            return httpx.Response(202, json=draw("queued"))
        if request.url.params.get("download") == "1":
            return httpx.Response(200, content=served)
        return httpx.Response(200, json=draw(next(polls)))

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("final_status", "served", "code", "kept"),
    [("succeeded", PAYLOAD, 0, True), ("succeeded", PAYLOAD + b"x", 1, False), ("failed", PAYLOAD, 1, False)],
)
def test_sample_follows_the_draw_and_checks_the_file(
    monkeypatch, tmp_path, capsys, final_status, served, code, kept
):
    requests: list[tuple[str, str]] = []
    transport = mock_server(final_status, served, requests)
    monkeypatch.setattr(cli_module, "SynthexClient", partial(SynthexClient, transport=transport))
    monkeypatch.setenv("SYNTHEX_CONFIG", str(tmp_path / "config.json"))
    output = tmp_path / "rows.parquet"
    status = cli_module.main(
        ["sample", "ent_1", "--rows", "500", "--seed", "7", "--condition", "sex=Female", "-o", str(output),
         "--interval", "0", "--url", "http://synthex.test", "--token", "t", "-q"]
    )  # fmt: skip
    assert status == code, capsys.readouterr().err
    assert output.exists() is kept
    assert not (tmp_path / "rows.parquet.part").exists()
    if kept:
        assert output.read_bytes() == PAYLOAD
    assert requests[0] == ("POST", "http://synthex.test/api/v1/entitlements/ent_1/samples/")
    assert len(requests) == (4 if final_status == "failed" else 5)
