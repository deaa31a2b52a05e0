import gzip
import hashlib
import io
import json
import math
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketplace.catalog.ingest import (
    HashingWriter,
    IngestError,
    TableProfile,
    apply_metadata_overrides,
    copy_stream,
    profile_table,
    read_table,
    sniff_format,
)
from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[2]
ADULT = adult_csv()


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def refusal(path: Path, fmt: str, **options: int) -> IngestError:
    with pytest.raises(IngestError) as caught:
        profile_table(path, fmt, **options)
    return caught.value


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


# sniff_format


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"a,b\n1,2\n", "data.csv", "csv"),
        (b"a,b\n1,2\n", "DATA.CSV", "csv"),
        (b"\xef\xbb\xbfa,b\n1,2\n", "data.csv", "csv"),
        (b'{"a": 1}\n', "data.jsonl", "jsonl"),
        (b'\n {"a": 1}\n', "data.ndjson", "jsonl"),
        (b"PAR1\x15\x04", "data.parquet", "parquet"),
        (b"PAR1\x15\x04", "data.pq", "parquet"),
        (b"a,b\n1,2\n", "upload", "csv"),
        (b"city\nParis\nNice\n", "cities.csv", "csv"),
        (b"BMI,MZ\n1,2\n", "data.csv", "csv"),
    ],
)
def test_sniff_format_accepts_tables(head: bytes, filename: str, expected: str) -> None:
    assert sniff_format(head, filename) == expected


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (pickle.dumps({"a": 1}), "a Python pickle"),
        (pickle.dumps([1, 2], protocol=0), "a Python pickle"),
        (b"ccopy_reg\n_reconstructor\np0\n(c__main__\nEvil\n", "a Python pickle"),
        (b"PK\x03\x04\x14\x00\x00\x00", "a ZIP archive"),
        (gzip.compress(b"a,b\n1,2\n", mtime=0), "a gzip archive"),
        (b"\x7fELF\x02\x01\x01\x00", "an ELF executable"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "a Windows executable"),
        (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01", "a Mach-O executable"),
        (b"#!/bin/sh\nrm -rf /\n", "a script"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
    ],
)
def test_sniff_format_refuses_binaries_named_as_csv(head: bytes, what: str) -> None:
    with pytest.raises(IngestError) as caught:
        sniff_format(head, "data.csv")
    assert caught.value.code == "disguised_binary"
    assert (
        caught.value.message == f"data.csv is {what}, not a table. Upload CSV, Parquet or JSON Lines files."
    )


def test_sniff_format_refuses_a_real_zip_named_csv() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    with pytest.raises(IngestError) as caught:
        sniff_format(buffer.getvalue()[:8192], "data.csv")
    assert caught.value.code == "disguised_binary"


@pytest.mark.parametrize(
    ("head", "filename", "message"),
    [
        (
            b"PAR1\x15\x04",
            "data.csv",
            "data.csv is named as CSV but its content is Parquet; rename it or upload the right file.",
        ),
        (
            b'{"a": 1}\n',
            "data.csv",
            "data.csv is named as CSV but its content is JSON Lines; rename it or upload the right file.",
        ),
        (
            b"a,b\n1,2\n",
            "data.parquet",
            "data.parquet is named as Parquet but its content is CSV; rename it or upload the right file.",
        ),
        (
            b"a,b\n1,2\n",
            "data.jsonl",
            "data.jsonl is named as JSON Lines but its content is CSV; rename it or upload the right file.",
        ),
    ],
)
def test_sniff_format_refuses_a_lying_extension(head: bytes, filename: str, message: str) -> None:
    with pytest.raises(IngestError) as caught:
        sniff_format(head, filename)
    assert (caught.value.code, caught.value.message) == ("format_mismatch", message)


@pytest.mark.parametrize(
    ("head", "filename", "code"),
    [
        (b"", "data.csv", "empty_file"),
        (b" \n\r\n", "data.csv", "empty_file"),
        (b"a,b\n1,2\n", "data.xlsx", "unsupported_format"),
        (b"a,b\x00\n", "data.csv", "nul_bytes"),
        ("a,b\n".encode("utf-16"), "data.csv", "undecodable"),
    ],
)
def test_sniff_format_refuses_other_inputs(head: bytes, filename: str, code: str) -> None:
    with pytest.raises(IngestError) as caught:
        sniff_format(head, filename)
    assert caught.value.code == code


def test_ingest_error_to_dict_is_the_api_error_body() -> None:
    error = IngestError("no_rows", "x.csv has no rows.")
    assert error.to_dict() == {"detail": "x.csv has no rows.", "code": "no_rows"}


def test_ingest_error_refuses_unknown_codes() -> None:
    with pytest.raises(ValueError):
        IngestError("oops", "message")


# copy_stream and HashingWriter


def test_copy_stream_hashes_and_counts() -> None:
    chunks = [b"abc" * 1000, b"", b"def" * 7]
    sink = io.BytesIO()
    digest, size = copy_stream(iter(chunks), sink, max_bytes=10_000)
    data = b"".join(chunks)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sink.getvalue() == data


def test_copy_stream_stops_before_the_chunk_that_passes_the_limit() -> None:
    sink = io.BytesIO()
    with pytest.raises(IngestError) as caught:
        copy_stream([b"a" * 6, b"b" * 6], sink, max_bytes=10)
    assert caught.value.code == "too_large"
    assert caught.value.message == "The file is larger than the upload limit of 10 bytes."
    assert sink.getvalue() == b"a" * 6


def test_copy_stream_reports_a_cut_off_upload() -> None:
    with pytest.raises(IngestError) as caught:
        copy_stream([b"a" * 6], io.BytesIO(), max_bytes=100, expected_size=10)
    assert caught.value.code == "incomplete_upload"
    assert caught.value.message == "The upload was cut off: 6 of 10 bytes arrived. Please upload it again."


def test_hashing_writer_exposes_digest_and_size() -> None:
    writer = HashingWriter(io.BytesIO(), max_bytes=3 << 30)
    writer.write(b"hello ")
    writer.write(b"world")
    assert (writer.sha256, writer.size) == (hashlib.sha256(b"hello world").hexdigest(), 11)
    sink = io.BytesIO()
    limited = HashingWriter(sink, max_bytes=3 << 20)
    with pytest.raises(IngestError) as caught:
        limited.write(b"z" * ((3 << 20) + 1))
    assert caught.value.message == "The file is larger than the upload limit of 3.0 MB."
    assert (limited.size, sink.getvalue()) == (0, b"")


# profile_table: good files

GOOD_CSV = (
    "id,name,score,ok,joined,note\n"
    '1,Zoë,1.5,true,2021-03-01,"hello, world"\n'
    '2,Łukasz,,false,2021-03-02,"two\nlines"\n'
    "3,日本,2.5,TRUE,2021-03-04,\n"
    '4,Ana,-1,False,,"say ""hi"""\n'
    "5,Bo,4.0,true,2021-04-01,plain\n"
    "6,Cy,10,false,2021-05-01,plain\n"
)


def test_profile_table_profiles_a_csv_with_nulls_dates_booleans_unicode_and_quotes(tmp_path: Path) -> None:
    profile = profile_table(write(tmp_path, "good.csv", GOOD_CSV), "csv")
    assert (profile.format, profile.rows) == ("csv", 6)
    columns = {column.name: column for column in profile.columns}
    assert [(c.name, c.dtype, c.sdtype, c.nulls, c.distinct) for c in profile.columns] == [
        ("id", "integer", "id", 0, 6),
        ("name", "string", "categorical", 0, 6),
        ("score", "float", "numerical", 1, 5),
        ("ok", "boolean", "boolean", 0, 4),
        ("joined", "datetime", "datetime", 1, 5),
        ("note", "string", "categorical", 1, 4),
    ]
    score = columns["score"]
    assert (score.min, score.max, score.mean) == (-1.0, 10.0, 3.4)
    assert score.std == pytest.approx(math.sqrt(13.54))
    assert score.histogram[0] == (-1.0, pytest.approx(-0.45), 1)
    assert score.histogram[-1] == (pytest.approx(9.45), 10.0, 1)
    assert sum(count for _, _, count in score.histogram) == 5
    assert (columns["joined"].min, columns["joined"].max) == ("2021-03-01T00:00:00", "2021-05-01T00:00:00")
    assert columns["note"].top_values == (
        ("plain", 2),
        ("hello, world", 1),
        ('say "hi"', 1),
        ("two\nlines", 1),
    )
    assert columns["name"].histogram == ()
    assert profile.preview[1] == {
        "id": 2,
        "name": "Łukasz",
        "score": None,
        "ok": False,
        "joined": "2021-03-02",
        "note": "two\nlines",
    }
    assert profile.sdv_metadata == {
        "columns": {
            "id": {"sdtype": "id"},
            "name": {"sdtype": "categorical"},
            "score": {"sdtype": "numerical"},
            "ok": {"sdtype": "boolean"},
            "joined": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
            "note": {"sdtype": "categorical"},
        },
        "primary_key": "id",
        "METADATA_SPEC_VERSION": "SINGLE_TABLE_V2",
    }


def test_profile_table_reads_the_same_table_from_every_format(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "city": ["Paris", None, "Kraków", "Paris", "Nice", "Paris"],
            "rooms": [1, 2, 3, 2, 5, 2],
            "price": [1.5, None, 2.25, 3.0, 4.0, 5.0],
            "sold": [True, False, True, None, True, False],
        }
    )
    csv_path = write(tmp_path, "t.csv", frame.to_csv(index=False))
    parquet_path = write(tmp_path, "t.parquet", parquet_bytes(frame))
    jsonl_path = write(tmp_path, "t.jsonl", frame.to_json(orient="records", lines=True))
    summaries = []
    for path, fmt in ((csv_path, "csv"), (parquet_path, "parquet"), (jsonl_path, "jsonl")):
        profile = profile_table(path, fmt)
        summaries.append(
            [(c.name, c.dtype, c.sdtype, c.nulls, c.distinct, c.min, c.max, c.mean) for c in profile.columns]
        )
        assert profile.preview[1]["city"] is None
        assert profile.preview[2]["city"] == "Kraków"
    assert summaries[0] == [
        ("city", "string", "categorical", 1, 3, None, None, None),
        ("rooms", "integer", "numerical", 0, 4, 1, 5, 2.5),
        ("price", "float", "numerical", 1, 5, 1.5, 5.0, 3.15),
        ("sold", "boolean", "boolean", 1, 2, None, None, None),
    ]
    assert summaries[1] == summaries[0]
    assert summaries[2] == summaries[0]


def test_profile_table_round_trips_through_dicts(tmp_path: Path) -> None:
    profile = profile_table(write(tmp_path, "good.csv", GOOD_CSV), "csv")
    as_json = json.loads(json.dumps(profile.to_dict()))
    assert TableProfile.from_dict(as_json) == profile


def test_profile_table_profiles_typed_parquet_dates(tmp_path: Path) -> None:
    table = pa.table(
        {
            "at": pa.array(
                [1_600_000_000_000_000, None, 1_700_000_000_000_000], pa.timestamp("us", tz="UTC")
            ),
            "day": pa.array([18000, 18001, 18002], pa.date32()),
            "level": pa.array(["a", "b", "a"]).dictionary_encode(),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    profile = profile_table(path, "parquet")
    assert [(c.name, c.dtype, c.sdtype, c.nulls, c.min, c.max) for c in profile.columns] == [
        ("at", "datetime", "datetime", 1, "2020-09-13T12:26:40", "2023-11-14T22:13:20"),
        ("day", "datetime", "datetime", 0, "2019-04-14T00:00:00", "2019-04-16T00:00:00"),
        ("level", "string", "categorical", 0, None, None),
    ]
    assert profile.preview[0]["day"] == "2019-04-14"
    json.dumps(profile.to_dict())


def test_profile_table_counts_distinct_values_approximately_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketplace.catalog.ingest import profile as profile_module

    monkeypatch.setattr(profile_module, "DISTINCT_CAP_RANGE", (1_000, 1_000))
    monkeypatch.setattr(profile_module, "DISTINCT_BUDGET", 1_000)
    values = [f"user-{index}" for index in range(20_000)] + ["user-7"] * 50
    frame = pd.DataFrame({"user": values, "amount": [index * 0.5 for index in range(len(values))]})
    profile = profile_table(write(tmp_path, "big.csv", frame.to_csv(index=False)), "csv")
    user, amount = profile.columns
    assert (user.distinct_is_exact, amount.distinct_is_exact) == (False, False)
    assert 19_000 < user.distinct < 21_000
    assert user.top_values[0] == ("user-7", 51)
    assert sum(count for _, _, count in amount.histogram) == 20_050
    assert amount.histogram[0] == (0.0, 501.225, 1003)


# profile_table: refusals


def test_profile_table_refuses_an_empty_file(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, "e.csv", b""), "csv")
    assert (error.code, error.message) == ("empty_file", "e.csv is empty: there is no data to read.")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "a,b,c\n1,2,3\n4,5\n",
            "Line 3 of r.csv has 2 fields but the header has 3; every row must have the same number of columns.",
        ),
        (
            'a,b\n1,"x\ny"\n2,3\n4,5,6\n',
            "Line 5 of r.csv has 3 fields but the header has 2; every row must have the same number of columns.",
        ),
    ],
)
def test_profile_table_names_the_ragged_csv_line(tmp_path: Path, content: str, message: str) -> None:
    error = refusal(write(tmp_path, "r.csv", content), "csv")
    assert (error.code, error.message) == ("ragged_rows", message)


def test_profile_table_finds_a_ragged_row_far_into_the_file(tmp_path: Path) -> None:
    content = "a,b\n" + "1,2\n" * 300_000 + "1,2,3\n"
    error = refusal(write(tmp_path, "r.csv", content), "csv")
    assert error.code == "ragged_rows"
    assert error.message.startswith("Line 300002 of r.csv has 3 fields")


def test_profile_table_names_the_undecodable_byte(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, "u.csv", b"a,b\nx,y\n" + "é,z\n".encode("latin-1")), "csv")
    assert error.code == "undecodable"
    assert error.message == (
        "u.csv is not valid UTF-8: byte 0xe9 on line 3 (byte offset 8) cannot be decoded. Save the file as UTF-8."
    )


def test_profile_table_finds_undecodable_bytes_across_chunks(tmp_path: Path) -> None:
    from marketplace.catalog.ingest.sources import SCAN_CHUNK_BYTES

    padding = b"a" * (SCAN_CHUNK_BYTES - 1)
    good = profile_table(
        write(tmp_path, "g.csv", b"h\n" + padding + "€\n".encode()), "csv", max_line_bytes=1 << 24
    )
    assert good.rows == 1
    error = refusal(write(tmp_path, "b.csv", b"h\n" + padding + b"\xe2\x82\n"), "csv", max_line_bytes=1 << 24)
    assert error.code == "undecodable"
    assert f"byte offset {len(padding) + 2}" in error.message


def test_profile_table_refuses_nul_bytes(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, "n.csv", b"a,b\n1,2\n3,\x004\n"), "csv")
    assert (error.code, error.message) == (
        "nul_bytes",
        "n.csv contains a NUL byte on line 3 (byte offset 10); text tables cannot contain NUL bytes.",
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_profile_table_refuses_a_10_mb_line(tmp_path: Path, fmt: str) -> None:
    long_line = (
        b'{"a": "' + b"x" * (10 << 20) + b'"}\n' if fmt == "jsonl" else b"1," + b"x" * (10 << 20) + b"\n"
    )
    head = b'{"a": "1"}\n' if fmt == "jsonl" else b"a,b\n"
    error = refusal(write(tmp_path, f"l.{fmt}", head + long_line + head), fmt)
    assert (error.code, error.message) == (
        "line_too_long",
        f"The row on line 2 of l.{fmt} is longer than 1 MB; rows that long are not supported "
        "(is a quote left open?).",
    )


@pytest.mark.parametrize(
    "content",
    [
        'a,b\n1,"' + "x\n" * 6_000 + '"\n',
        'a,b\n1,"left open\n' + "2,3\n" * 3_000,
        'a,b\n1,"a ""quoted"" word left open\n' + "2,3\n" * 3_000,
    ],
)
def test_profile_table_measures_csv_rows_across_quoted_newlines(tmp_path: Path, content: str) -> None:
    error = refusal(write(tmp_path, "q.csv", content), "csv", max_line_bytes=10_000)
    assert (error.code, error.message) == (
        "line_too_long",
        "The row on line 2 of q.csv is longer than 10000 bytes; rows that long are not supported "
        "(is a quote left open?).",
    )


def test_profile_table_accepts_quoted_newlines_below_the_row_limit(tmp_path: Path) -> None:
    content = 'a,b\n1,"' + "x\n" * 4_000 + '"\n2,"y ""z""\nw"\n' + "3,4\n" * 3_000
    profile = profile_table(write(tmp_path, "q.csv", content), "csv", max_line_bytes=10_000)
    assert profile.rows == 3_002
    assert profile.preview[1] == {"a": 2, "b": 'y "z"\nw'}


def test_profile_table_refuses_truncated_parquet(tmp_path: Path) -> None:
    data = parquet_bytes(pd.DataFrame({"a": range(1000), "b": ["x"] * 1000}))
    for cut in (len(data) // 2, len(data) - 5, 10):
        error = refusal(write(tmp_path, "t.parquet", data[:cut]), "parquet")
        assert error.code == "truncated_parquet"
        assert error.message.startswith("t.parquet is not a complete Parquet file")


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (
            '{"a": 1}\n{"a": 2\n',
            "broken_jsonl",
            "Line 2 of j.jsonl is not valid JSON: Expecting ',' delimiter at column 8.",
        ),
        (
            '{"a": 1}\n\n[1, 2]\n',
            "broken_jsonl",
            "Line 3 of j.jsonl is a JSON array, not an object; each line must be one object such as "
            '{"column": value}.',
        ),
        (
            '"a"\n',
            "broken_jsonl",
            'Line 1 of j.jsonl is a JSON string, not an object; each line must be one object such as {"column": value}.',
        ),
        (
            '{"a": 1}\n{"a": 2, "b": 3}\n',
            "ragged_rows",
            "Line 2 of j.jsonl has the key 'b', which the first line does not have; every line must use the "
            "first line's keys.",
        ),
        ('{"a": 1, "a": 2}\n', "duplicate_columns", "Line 1 of j.jsonl has the key 'a' twice."),
        (
            '{"": 1}\n',
            "empty_column_name",
            "Column 1 of j.jsonl has an empty name in line 1; every column needs a name.",
        ),
    ],
)
def test_profile_table_refuses_bad_json_lines(tmp_path: Path, content: str, code: str, message: str) -> None:
    error = refusal(write(tmp_path, "j.jsonl", content), "jsonl")
    assert (error.code, error.message) == (code, message)


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (
            "a,b,a\n1,2,3\n",
            "duplicate_columns",
            "d.csv has two columns named 'a' (columns 1 and 3) in the header.",
        ),
        (
            "a,,c\n1,2,3\n",
            "empty_column_name",
            "Column 2 of d.csv has an empty name in the header; every column needs a name.",
        ),
        ("a,b\n", "no_rows", "d.csv has a header but no rows; upload a table with at least one row."),
        ("a,b", "no_rows", "d.csv has a header but no rows; upload a table with at least one row."),
    ],
)
def test_profile_table_refuses_bad_csv_headers(tmp_path: Path, content: str, code: str, message: str) -> None:
    error = refusal(write(tmp_path, "d.csv", content), "csv")
    assert (error.code, error.message) == (code, message)


def test_profile_table_refuses_parquet_without_rows_or_with_duplicate_names(tmp_path: Path) -> None:
    empty = tmp_path / "e.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), empty)
    assert refusal(empty, "parquet").code == "no_rows"
    duplicated = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"]), duplicated)
    assert refusal(duplicated, "parquet").code == "duplicate_columns"


def test_profile_table_refuses_nested_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"tags": pa.array([[1, 2], [3]])}), path)
    error = refusal(path, "parquet")
    assert error.code == "unsupported_format"
    assert error.message.startswith("Column 'tags' holds list<element: int64> values")


# SDV metadata


def test_sdv_metadata_loads_in_sdv_and_agrees_with_its_detection_on_adult() -> None:
    from sdv.metadata import Metadata

    profile = profile_table(ADULT, "csv")
    ours = Metadata.load_from_dict({"tables": {"adult": profile.sdv_metadata}})
    ours.validate()
    frame = pd.read_csv(ADULT)
    ours.validate_data({"adult": frame})
    detected = Metadata.detect_from_dataframes({"adult": frame}).to_dict()["tables"]["adult"]
    sdv_sdtypes = {name: column["sdtype"] for name, column in detected["columns"].items()}
    our_sdtypes = {name: column["sdtype"] for name, column in profile.sdv_metadata["columns"].items()}
    assert our_sdtypes == sdv_sdtypes
    assert profile.sdv_metadata.get("primary_key") == detected.get("primary_key")
    assert profile.rows == len(frame) == 32_561


def test_sdv_metadata_with_key_and_datetime_loads_in_sdv(tmp_path: Path) -> None:
    from sdv.metadata import Metadata

    profile = profile_table(write(tmp_path, "good.csv", GOOD_CSV), "csv")
    metadata = Metadata.load_from_dict({"tables": {"t": profile.sdv_metadata}})
    metadata.validate()
    assert metadata.to_dict()["tables"]["t"]["primary_key"] == "id"


def test_apply_metadata_overrides_returns_a_corrected_copy(tmp_path: Path) -> None:
    original = profile_table(write(tmp_path, "good.csv", GOOD_CSV), "csv").sdv_metadata
    before = json.dumps(original, sort_keys=True)
    corrected = apply_metadata_overrides(
        original, {"id": "numerical", "joined": "categorical", "ok": "categorical"}
    )
    assert json.dumps(original, sort_keys=True) == before
    assert corrected["columns"]["id"] == {"sdtype": "numerical"}
    assert corrected["columns"]["joined"] == {"sdtype": "categorical"}
    assert "primary_key" not in corrected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nope": "numerical"}, "There is no column named 'nope' in this table."),
        (
            {"id": "email"},
            "'email' is not a known type for column 'id'; use one of numerical, categorical, boolean, datetime, id.",
        ),
    ],
)
def test_apply_metadata_overrides_refuses_unknown_names_and_sdtypes(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    original = profile_table(write(tmp_path, "good.csv", GOOD_CSV), "csv").sdv_metadata
    before = json.dumps(original, sort_keys=True)
    with pytest.raises(IngestError) as caught:
        apply_metadata_overrides(original, overrides)
    assert (caught.value.code, caught.value.message) == ("bad_metadata", message)
    assert json.dumps(original, sort_keys=True) == before


# read_table and the import boundary


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_read_table_reads_selected_columns_and_first_rows(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame({"a": range(100_000), "b": ["x", "y"] * 50_000, "c": [0.5] * 100_000})
    if fmt == "csv":
        path = write(tmp_path, "t.csv", frame.to_csv(index=False))
    elif fmt == "parquet":
        path = write(tmp_path, "t.parquet", parquet_bytes(frame))
    else:
        path = write(tmp_path, "t.jsonl", frame.to_json(orient="records", lines=True))
    head = read_table(path, fmt, columns=["b", "a"], max_rows=70_000)
    pd.testing.assert_frame_equal(head, frame[["b", "a"]].head(70_000), check_dtype=False)
    assert len(read_table(path, fmt)) == 100_000


def test_ingest_imports_no_django_and_no_sdv() -> None:
    code = (
        "import sys, marketplace.catalog.ingest as ingest; "
        "print(sorted(m for m in ('django', 'sdv', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_arrow_allocator_switches_with_the_table_reader_only(tmp_path):
    """Validation fits its memory budget with jemalloc (it hands freed memory back): the switch comes with
    the lazily loaded table reader, before Arrow allocates; importing the ingest package alone (as every
    web process does) leaves the pool alone, and an explicit ARROW_DEFAULT_MEMORY_POOL wins."""
    import os
    import subprocess
    import sys

    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    script = (
        "import pyarrow as pa, sys\n"
        "from pathlib import Path\n"
        "import marketplace.catalog.ingest\n"
        "before = pa.default_memory_pool().backend_name\n"
        "from marketplace.catalog.ingest import sources\n"
        "sources.TableSource(Path(sys.argv[1]), 'csv', max_line_bytes=1 << 20)\n"
        "print(before, pa.default_memory_pool().backend_name)"
    )
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    default = subprocess.run(
        [sys.executable, "-c", script, str(table)], env=env, capture_output=True, text=True, check=True
    )
    assert default.stdout.split() == ["mimalloc", "jemalloc"]
    chosen = subprocess.run(
        [sys.executable, "-c", script, str(table)],
        env={**env, "ARROW_DEFAULT_MEMORY_POOL": "system"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert chosen.stdout.split() == ["system", "system"]


def test_parser_blocks_fit_the_longest_row_the_scan_measured(tmp_path):
    """Blocks are sized from the scan's longest row (512 KiB for ordinary files, to keep memory down); a
    row longer than two such blocks (which pyarrow refuses to straddle), quoted newlines included, still
    parses whole."""
    from marketplace.catalog.ingest.sources import BLOCK_BYTES, TableSource, TextScan, scan_text

    limit = 2 << 20
    long_text = ("x" * 1000 + "\n") * 1200  # a 1.2 MB quoted field with newlines inside
    body = "id,text\n" + "".join(f'{i},"short {i}"\n' for i in range(2000))
    body += f'2000,"{long_text}"\n' + "".join(f'{i},"short {i}"\n' for i in range(2001, 4000))
    path = write(tmp_path, "long.csv", body)
    longest = scan_text(path, max_line_bytes=limit, quoted=True).longest_row
    assert longest == len(f'2000,"{long_text}"'.encode()) > 2 * BLOCK_BYTES
    assert TableSource(path, "csv", max_line_bytes=limit, longest_row=longest).block_bytes > longest
    assert TableSource(path, "csv", max_line_bytes=limit, longest_row=30).block_bytes == BLOCK_BYTES
    assert scan_text(write(tmp_path, "tail.csv", "a\n" + "y" * 5000), max_line_bytes=limit) == TextScan(
        5000, 2
    )
    assert profile_table(path, "csv", max_line_bytes=limit).rows == 4000


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_profiling_reports_its_progress(tmp_path, fmt):
    frame = pd.DataFrame({"x": range(300_000), "y": [f"v{i % 7}" for i in range(300_000)]})
    path = tmp_path / f"table.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, row_group_size=50_000)
    seen: list[float] = []
    profile_table(path, fmt, progress=seen.append)
    assert len(seen) >= 3
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert seen[0] < 0.5
