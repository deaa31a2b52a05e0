"""Issue 18, attacks on delivery: formula cells in CSV copies (#12) and download limits bypassed with
ranged reads (#11), through the HTTP API with real stored tables."""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
import pytest

from exchange.downloads.models import Download

pytestmark = pytest.mark.django_db

HOSTILE = [
    "=cmd|' /C calc'!A0",
    '+HYPERLINK("http://evil.test")',
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "plain text",
    "-12.5",
]


def _link(client: Any, entitlement: Any, fmt: str = "csv") -> dict[str, Any]:
    response = client.post(f"/api/v1/entitlements/{entitlement.id}/links/", {"format": fmt}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _path(url: str) -> str:
    return url.split("testserver", 1)[1]


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def hostile_table(provider: Any, buyer: Any, certified_table_factory: Any, entitlement_factory: Any) -> Any:
    """An entitlement to a certified table whose text column holds formula payloads and whose numeric
    columns hold negative numbers."""
    rows = 40
    frame = pd.DataFrame(
        {
            "comment": [HOSTILE[i % len(HOSTILE)] for i in range(rows)],
            "balance": [-1000 - 37 * i for i in range(rows)],
            "rate": [-0.5 - i / 8 for i in range(rows)],
        }
    )
    return entitlement_factory(buyer, certified_table_factory(provider, frame=frame))


def test_csv_copy_neutralises_formula_cells_and_keeps_negative_numbers(
    hostile_table: Any, buyer: Any, api_client_for: Any
) -> None:
    client = api_client_for(buyer)
    body = _body(client.get(_path(_link(client, hostile_table)["url"])))
    stored = pd.read_parquet(
        io.BytesIO(_body(client.get(_path(_link(client, hostile_table, "parquet")["url"]))))
    )
    records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    header, cells = records[0], records[1:]
    comments = [row[header.index("comment")] for row in cells]

    assert "'=cmd|' /C calc'!A0" in comments
    for value, original in zip(comments, stored["comment"], strict=True):
        risky = original[:1] in ("=", "+", "-", "@", "\t", "\r") and original != "-12.5"
        assert value == ("'" + original if risky else original)
    assert {value[:1] for value in comments} <= {"'", "p", "-"}
    assert [value for value in comments if value.startswith("-")] == ["-12.5"] * comments.count("-12.5")
    # Numeric columns stay numbers (marking may move a value by one unit, never its sign or its quote).
    balances = [row[header.index("balance")] for row in cells]
    rates = [row[header.index("rate")] for row in cells]
    assert all(value.startswith("-") and float(value) < 0 for value in balances + rates)
    frame = pd.read_csv(io.BytesIO(body))
    assert (str(frame["balance"].dtype), str(frame["rate"].dtype)) == ("int64", "float64")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_other_formats_keep_text_cells_as_they_are(
    hostile_table: Any, buyer: Any, api_client_for: Any, fmt: str
) -> None:
    client = api_client_for(buyer)
    body = _body(client.get(_path(_link(client, hostile_table, fmt)["url"])))
    frame = (
        pd.read_parquet(io.BytesIO(body)) if fmt == "parquet" else pd.read_json(io.BytesIO(body), lines=True)
    )
    assert "=cmd|' /C calc'!A0" in set(frame["comment"])
    assert not any(value.startswith("'") for value in frame["comment"])


def test_a_leaked_csv_copy_is_still_traced_to_its_buyer(
    hostile_table: Any, buyer: Any, api_client_for: Any, tmp_path: Any
) -> None:
    from exchange.downloads import formats, selectors

    client = api_client_for(buyer)
    leaked = tmp_path / "leak.csv"
    leaked.write_bytes(_body(client.get(_path(_link(client, hostile_table)["url"]))))
    table = formats.read_any(leaked)
    assert "=cmd|' /C calc'!A0" in table.column("comment").to_pylist()
    suspects, candidates = selectors.trace_table(table)
    assert candidates == 1 and suspects[0].entitlement_id == hostile_table.id
    assert Download.objects.filter(outcome="served").count() == 1


@pytest.mark.parametrize("header", ["bytes=1-", "bytes=0-", "bytes=-100000000", "bytes=7-100"])
def test_repeated_ranged_reads_count_toward_the_download_limit(
    bought: Any, buyer: Any, api_client_for: Any, settings: Any, header: str
) -> None:
    settings.SYNTHEX_DOWNLOAD_LIMITS = {"standard": 2}
    client = api_client_for(buyer)
    link = _link(client, bought)
    statuses = []
    for _ in range(4):
        response = client.get(_path(link["url"]), HTTP_RANGE=header)
        if response.status_code in (200, 206):
            _body(response)
        statuses.append(response.status_code)
    # A fresh link does not reset the count either.
    again = client.get(_path(_link(client, bought)["url"]), HTTP_RANGE=header)
    assert statuses == [206, 206, 403, 403]
    assert (again.status_code, again.json()["code"]) == (403, "limit_reached")
    assert Download.objects.filter(outcome="served", starts_copy=True).count() == 2
    assert set(Download.objects.filter(outcome="refused").values_list("reason", flat=True)) == {
        "limit_reached"
    }


def test_a_resumed_download_counts_once_even_through_a_fresh_link(
    bought: Any, buyer: Any, api_client_for: Any, settings: Any
) -> None:
    settings.SYNTHEX_DOWNLOAD_LIMITS = {"standard": 1}
    client = api_client_for(buyer)
    link = _link(client, bought)
    head = _body(client.get(_path(link["url"]), HTTP_RANGE="bytes=0-999"))
    middle = _body(client.get(_path(link["url"]), HTTP_RANGE="bytes=1000-4999"))
    # `synthex download` resumes an interrupted copy with a new link and If-Range.
    tail_response = client.get(
        _path(_link(client, bought)["url"]), HTTP_RANGE="bytes=5000-", HTTP_IF_RANGE=f'"{link["sha256"]}"'
    )
    tail = _body(tail_response)
    assert tail_response.status_code == 206
    assert len(head + middle + tail) == link["size_bytes"]
    # Going back to bytes already served is a second copy: refused under a limit of one.
    for header in ("bytes=0-", "bytes=5000-", "bytes=4000-"):
        refused = client.get(_path(link["url"]), HTTP_RANGE=header)
        assert (refused.status_code, refused.json()["code"]) == (403, "limit_reached")
    assert list(
        Download.objects.filter(outcome="served")
        .order_by("created_at")
        .values_list("range_start", "starts_copy")
    ) == [(0, True), (1000, False), (5000, False)]
