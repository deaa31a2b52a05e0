"""``synthex upload`` when the server keeps its files on S3 (moto_server): every chunk goes straight to the
store with a presigned part URL, none through the server, and the version holds the exact bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from marketplace.catalog.models import Upload, VersionFile

pytestmark = pytest.mark.django_db(transaction=True)

PART = 5 * 1024 * 1024


def test_upload_sends_parts_to_the_store_and_makes_a_version(
    cli, provider, token_for, product_factory, small_tables, tmp_path, s3_files, monkeypatch
):
    from marketplace.catalog import upload_sessions

    received: list[int] = []
    original = upload_sessions.receive_chunk
    monkeypatch.setattr(
        upload_sessions,
        "receive_chunk",
        lambda upload, *, index, **kw: (received.append(index), original(upload, index=index, **kw))[1],
    )
    product = product_factory(provider, "On S3")
    text = small_tables["synthetic"].to_csv(index=False)
    body = text.split("\n", 1)[1]
    while len(text) < 2 * PART + 1000:
        text += body
    big, train = tmp_path / "people.csv", tmp_path / "train.csv"
    big.write_text(text)
    small_tables["train"].to_csv(train, index=False)
    result = cli(
        "upload", product.slug, big, "--train", train, "--no-submit", "--chunk-size", PART, "--json",
        token=token_for(provider),
    )  # fmt: skip
    assert result.code == 0, result.err
    files = {Path(f["path"]).name: f for f in result.json()["files"]}
    assert files["people.csv"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert (files["people.csv"]["chunks"], files["people.csv"]["sent_chunks"]) == (3, 3)
    assert received == []  # no byte went through the server
    assert set(Upload.objects.values_list("transport", flat=True)) == {"s3"}
    stored = {f.role: f for f in VersionFile.objects.filter(version__product=product)}
    client, bucket = s3_files
    synthetic = stored["synthetic"]
    copy = client.get_object(Bucket=bucket, Key=f"files/{synthetic.storage_name}")["Body"].read()
    assert copy == big.read_bytes()
    reference = client.get_object(Bucket=bucket, Key=f"reference/{stored['train'].storage_name}")[
        "Body"
    ].read()
    assert reference == train.read_bytes()
