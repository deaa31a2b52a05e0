"""Issue 18 #6: a 2.8 KB Parquet file (8 rows of 64 MiB strings, zstd) pinned a web thread for 13 minutes
at 1.9 GB RSS (date-format guessing on huge strings) and left a temp file. Cells, decompressed sizes and
the time spent per file are bounded; the refusal is a clear 400 and no temporary file stays behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketplace.catalog.ingest import IngestError, profile_table
from marketplace.catalog.models import ProductVersion, Upload

CELL = 16 << 20  # 16 MiB a cell, 1/4 of the attack's: still 16 times the limit


def huge_values(rows: int, cell: int) -> pa.DictionaryArray:
    """``rows`` copies of one date-like string of ``cell`` bytes, as a dictionary (one copy in memory)."""
    value = "2024-01-01" + "1" * (cell - 10)
    return pa.DictionaryArray.from_arrays(pa.array([0] * rows, type=pa.int32()), pa.array([value]))


def bomb(path: Path, rows: int = 8, cell: int = CELL) -> bytes:
    """Parquet of ``rows`` huge, date-like strings: a few KB on disk, ``rows * cell`` bytes once read."""
    pq.write_table(pa.table({"when": huge_values(rows, cell)}), path, compression="zstd", row_group_size=rows)
    return path.read_bytes()


def temp_files(settings: Any) -> list[Path]:
    folder = Path(settings.FILE_UPLOAD_TEMP_DIR)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.django_db
def test_a_parquet_bomb_is_refused_quickly_through_the_api_and_leaves_no_temp_file(
    provider: Any,
    api_client_for: Callable[[Any], Any],
    product_factory: Callable[..., Any],
    tmp_path: Path,
    settings: Any,
) -> None:
    payload = bomb(tmp_path / "bomb.parquet")
    assert len(payload) < 8_000
    product = product_factory(provider, "Bomb")
    before = temp_files(settings)
    began = time.monotonic()
    with (tmp_path / "bomb.parquet").open("rb") as handle:
        response = api_client_for(provider).post(
            f"/api/v1/products/{product.slug}/versions/", {"synthetic": handle}, format="multipart"
        )
    assert time.monotonic() - began < 20
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "cell_too_large"
    assert "1,048,576 bytes" in response.json()["detail"]
    assert ProductVersion.objects.count() == 0
    assert temp_files(settings) == before


@pytest.mark.django_db
def test_a_parquet_bomb_sent_as_an_upload_session_is_refused_by_the_check(
    provider: Any, api_client_for: Callable[[Any], Any], product_factory: Callable[..., Any], tmp_path: Path
) -> None:
    payload = bomb(tmp_path / "bomb.parquet")
    client = api_client_for(provider)
    product = product_factory(provider, "Bomb session")
    upload_id = client.post(
        "/api/v1/uploads/", {"filename": "bomb.parquet", "size": len(payload)}, format="json"
    ).json()["id"]
    client.generic(
        "PUT", f"/api/v1/uploads/{upload_id}/chunks/0/", payload, content_type="application/octet-stream"
    )
    client.post(f"/api/v1/uploads/{upload_id}/complete/")
    attach = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload_id]}, format="json"
    )
    assert (attach.status_code, attach.json()["code"]) == (400, "cell_too_large")
    assert Upload.objects.get(pk=upload_id).validation == "invalid"


def test_the_footer_refuses_a_bomb_before_decompressing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.parquet"
    bomb(path)

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was decompressed")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_reading)
    with pytest.raises(IngestError) as refused:
        profile_table(path, "parquet")
    assert refused.value.code == "cell_too_large"


def test_a_file_that_expands_past_the_limit_is_refused_from_its_footer(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"n": list(range(100_000))}), path, compression="zstd")
    with pytest.raises(IngestError) as refused:
        profile_table(path, "parquet", max_table_bytes=100_000)
    assert refused.value.code == "too_large"
    assert "over the limit of 100,000 bytes" in refused.value.message


def test_a_huge_value_repeated_on_many_rows_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    # On average the footer sees small cells (one 2 MiB dictionary value for 100,000 rows), but decoding
    # a batch would make 65,536 copies of it: the lengths are measured on the dictionary first.
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"when": huge_values(100_000, 2 << 20)}), path, compression="zstd")
    with pytest.raises(IngestError) as refused:
        profile_table(path, "parquet")
    assert refused.value.code == "cell_too_large"


def test_small_repeated_values_are_read_in_bounded_slices(tmp_path: Path) -> None:
    path = tmp_path / "wide-rows.parquet"
    pq.write_table(pa.table({"text": huge_values(300, 512 << 10)}), path, compression="zstd")
    with pytest.raises(IngestError) as refused:
        profile_table(path, "parquet", max_table_bytes=100 << 20)
    assert refused.value.code == "too_large"  # 150 MiB decoded, counted slice by slice
    assert profile_table(path, "parquet").rows == 300


def test_checking_a_file_stops_at_the_time_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "1,2\n" * 1000)
    with pytest.raises(IngestError) as refused:
        profile_table(path, "csv", max_seconds=0)
    assert refused.value.code == "validation_timeout"


@pytest.mark.django_db
def test_temp_files_of_a_killed_request_are_swept(settings: Any) -> None:
    """A web worker killed mid-request (the 13-minute thread was) leaves its multipart temp file: the hourly
    sweep deletes request temp files older than the session lifetime, and leaves current ones alone."""
    import os

    from marketplace.catalog.tasks import sweep_uploads_task

    folder = Path(settings.FILE_UPLOAD_TEMP_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    orphan, current = folder / "tmpkilled.upload.parquet", folder / "tmpcurrent.upload.csv"
    orphan.write_bytes(b"PAR1")
    current.write_bytes(b"a,b\n")
    long_ago = time.time() - (settings.SYNTHEX_UPLOAD_SESSION_HOURS + 1) * 3600
    os.utime(orphan, (long_ago, long_ago))
    sweep_uploads_task()
    assert (orphan.exists(), current.exists()) == (False, True)
    current.unlink()
