"""The fingerprint: a copy changes no value (it omits a keyed share of rows), certified figures hold on it,
tracing names the right copy and nobody else (issue 17 #5)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from exchange.downloads import fingerprint as fp
from exchange.downloads.formats import FORMATS, convert, plan_file, read_any
from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[2]
ADULT_CSV = adult_csv()


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return pd.read_csv(ADULT_CSV, na_values=["?"], nrows=4000).dropna().reset_index(drop=True)


def _shuffled_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A 'synthetic' table: each column drawn independently from the rows (what an honest model might emit)."""
    return pd.DataFrame(
        {
            name: frame[name].sample(frac=1.0, random_state=seed + i).to_numpy()
            for i, name in enumerate(frame.columns)
        }
    )


def _marked(frame: pd.DataFrame, secret: str) -> tuple[pd.DataFrame, fp.FingerprintPlan, bytes]:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    plan = fp.plan_table(table.to_batches())
    key = fp.fingerprint_key(b"test-secret", secret)
    return fp.mark_table(table, plan, key).to_pandas(), plan, key


def _rows(frame: pd.DataFrame) -> pd.Series:
    """Each row as one hashable tuple, counted (a multiset of rows)."""
    return pd.Series(list(frame.itertuples(index=False, name=None))).value_counts()


def test_a_copy_changes_no_value_and_omits_a_keyed_share_of_rows(adult: pd.DataFrame) -> None:
    synthetic = _shuffled_columns(adult.head(1000), 0)
    synthetic["ratio"] = np.random.default_rng(3).random(1000) * 7.3
    marked, plan, _ = _marked(synthetic, "ent_a")
    other, _, _ = _marked(synthetic, "ent_b")
    assert plan.omit_rate == 0.04
    assert list(marked.columns) == list(synthetic.columns)
    assert marked.dtypes.equals(synthetic.dtypes)
    before, after = _rows(synthetic), _rows(marked)
    assert (
        after.reindex(before.index, fill_value=0) <= before
    ).all()  # every row of the copy is a source row
    assert set(after.index) <= set(before.index)
    assert 1000 - 60 <= len(marked) <= 1000 - 20
    assert not marked.equals(other)  # another buyer's copy omits other rows
    for name in ("age", "education-num", "fnlwgt", "workclass", "ratio"):
        assert set(marked[name]) <= set(synthetic[name])


def _figure(document: dict[str, Any], section: str, name: str) -> float:
    value = document[section][name]
    return float(value["score"] if isinstance(value, dict) else value)


@pytest.mark.slow
def test_certified_figures_hold_on_the_copy(adult: pd.DataFrame) -> None:
    """The keyed subset is a uniform subset: the per-column and per-pair figures, exact matches, DCR share
    and plausibility move by at most 0.005, grades and verdict stay; the composite quality score (which
    varies with any resampling) moves no more than on uniform random subsets of the same size."""
    from marketplace.certification.engine.evaluate import evaluate

    synthetic = _shuffled_columns(adult.head(1000), 0)
    train, holdout = (
        adult.iloc[1000:2000].reset_index(drop=True),
        adult.iloc[2000:2250].reset_index(drop=True),
    )
    marked, _, _ = _marked(synthetic, "ent_a")
    original, copy = evaluate(synthetic, train, holdout).to_dict(), evaluate(marked, train, holdout).to_dict()
    for section, name in [
        ("quality", "sdmetrics_score"),
        ("quality", "column_shapes"),
        ("quality", "column_pair_trends"),
        ("privacy", "exact_match_rate"),
        ("privacy", "dcr_share"),
        ("plausibility", "rows_violating_any"),
    ]:
        before, after = _figure(original, section, name), _figure(copy, section, name)
        assert abs(before - after) <= 0.005, (section, name, before, after)
    for section, name in [
        ("quality", "grade"),
        ("privacy", "grade"),
        ("privacy", "passed"),
        ("plausibility", "grade"),
    ]:
        assert original[section][name] == copy[section][name], (section, name)
    uniform = [
        evaluate(synthetic.sample(n=len(marked), random_state=seed).reset_index(drop=True), train, holdout)
        for seed in range(3)
    ]
    spread = max(abs(item.to_dict()["quality"]["score"] - original["quality"]["score"]) for item in uniform)
    assert abs(copy["quality"]["score"] - original["quality"]["score"]) <= spread + 0.005


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("share", [1.0, 0.5])
def test_trace_survives_format_change_half_copy_shuffle_and_column_order(
    adult: pd.DataFrame, tmp_path: Path, fmt: str, share: float
) -> None:
    source = tmp_path / "source.parquet"
    adult.head(1000).to_parquet(source, index=False)
    plan = plan_file(source, "parquet")
    keys = [fp.fingerprint_key(b"test-secret", f"ent_{i}") for i in range(5)]
    delivered = tmp_path / f"copy.{fmt}"
    converted = convert(source, "parquet", delivered, fmt, plan=plan, key=keys[2])
    assert converted.rows + converted.omitted_rows == 1000
    leaked = read_any(delivered).to_pandas().sample(frac=share, random_state=7)
    leaked = leaked[list(reversed(leaked.columns))]
    resaved = tmp_path / "leak.csv"
    leaked.to_csv(resaved, index=False)
    observations = fp.observe(read_any(resaved), plan)
    scores = [fp.score(observations, key) for key in keys]
    assert fp.accuse(scores) == [2]
    assert scores[2].matches == 0


def _resaved(table: pa.Table, fmt: str) -> pa.Table:
    """``table`` written in ``fmt`` and read back as a leaker's tools would (CSV and JSON Lines as text)."""
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink)
        return pq.read_table(io.BytesIO(sink.getvalue()))
    if fmt == "csv":
        pa_csv.write_csv(table, sink)
    else:
        table.to_pandas().to_json(sink, orient="records", lines=True)
    sink.seek(0)
    frame = pd.read_csv(sink) if fmt == "csv" else pd.read_json(sink, lines=True)
    return pa.Table.from_pandas(frame.astype(str), preserve_index=False)


@pytest.mark.slow
def test_1000_half_leaks_name_their_source_and_nobody_else(adult: pd.DataFrame) -> None:
    """1,000 trials: a buyer's copy (one of 20 candidates), rows shuffled, columns reordered, re-saved as CSV,
    Parquet or JSON Lines, half its rows kept, is pinned on that buyer and nobody else; and the unmarked
    original, copies of buyers who are not candidates and unrelated same-schema tables are pinned on
    nobody."""
    sources = [
        pa.Table.from_pandas(adult.iloc[i * 1000 : (i + 1) * 1000], preserve_index=False) for i in range(3)
    ]
    plans = [fp.plan_table(table.to_batches()) for table in sources]
    candidates = [fp.fingerprint_key(b"test-secret", f"ent_{i}") for i in range(20)]
    rng = np.random.default_rng(0)
    named_right = false_accusations = 0
    for trial in range(1000):
        which = trial % 3
        source, plan = sources[which], plans[which]
        kind = trial % 4
        if kind in (0, 1):
            culprit: int | None = int(rng.integers(20))
            table = fp.mark_table(source, plan, candidates[culprit])
        elif kind == 2:
            culprit, table = (
                None,
                fp.mark_table(source, plan, fp.fingerprint_key(b"test-secret", f"x{trial}")),
            )
        else:
            culprit = None
            pool = sources[(which + 1) % 3]
            table = source if trial % 8 == 3 else pool
        keep = np.sort(rng.choice(table.num_rows, table.num_rows // 2, replace=False))
        table = table.take(rng.permutation(keep))
        table = table.select(list(rng.permutation(table.column_names)))
        table = _resaved(table, FORMATS[trial % 3])
        observations = fp.observe(table, plan)
        scores = [fp.score(observations, key) for key in candidates]
        accused = fp.accuse(scores)
        named_right += accused == [culprit] if culprit is not None else 0
        false_accusations += len([index for index in accused if index != culprit])
    assert false_accusations == 0
    assert named_right == 500


def test_plan_round_trips_and_reads_text_copies(adult: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(adult.head(50), preserve_index=False)
    plan = fp.plan_table(table.to_batches())
    assert fp.FingerprintPlan.from_dict(plan.to_dict()) == plan
    text = pa.Table.from_pandas(adult.head(50).astype(str), preserve_index=False)
    assert np.array_equal(fp.anchors(table, plan), fp.anchors(text, plan))


def test_floats_and_decimals_arrive_exactly_as_certified(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {"price": np.round(rng.uniform(1, 50, 2000), 2), "score": rng.normal(size=2000), "n": np.arange(2000)}
    )
    source = tmp_path / "source.parquet"
    frame.to_parquet(source, index=False)
    plan = plan_file(source, "parquet")
    for fmt in FORMATS:
        copy = tmp_path / f"copy.{fmt}"
        convert(source, "parquet", copy, fmt, plan=plan, key=fp.fingerprint_key(b"s", "ent_d"))
        delivered = (
            pd.read_parquet(copy)
            if fmt == "parquet"
            else (pd.read_csv(copy) if fmt == "csv" else pd.read_json(copy, lines=True, precise_float=True))
        )
        assert 2000 - 40 <= len(delivered) < 2000
        kept = frame.set_index("n").loc[delivered["n"]]
        assert np.array_equal(kept["price"].to_numpy(), delivered["price"].to_numpy())
        # Parquet carries the float itself; text formats print 15+ significant digits.
        tolerance = 0 if fmt == "parquet" else 1e-12
        assert np.allclose(kept["score"].to_numpy(), delivered["score"].to_numpy(), rtol=tolerance, atol=0)


@pytest.mark.django_db
def test_trace_leak_command_names_the_buyer(
    bought: Any, buyer: Any, user_factory: Any, entitlement_factory: Any, api_client_for: Any, tmp_path: Path
) -> None:
    others = [entitlement_factory(user_factory(), bought.version) for _ in range(2)]
    links = {}
    for entitlement in [bought, *others]:
        client = api_client_for(entitlement.buyer)
        response = client.post(
            f"/api/v1/entitlements/{entitlement.id}/links/", {"format": "parquet"}, format="json"
        )
        url = response.json()["url"].split("testserver", 1)[1]
        links[entitlement.id] = b"".join(client.get(url).streaming_content)
    leaked = pd.read_parquet(io.BytesIO(links[bought.id])).sample(frac=0.5, random_state=1)
    path = tmp_path / "found-on-a-forum.jsonl"
    leaked.to_json(path, orient="records", lines=True)
    from django.core.management import call_command

    out = io.StringIO()
    call_command("trace_leak", str(path), stdout=out)
    text = out.getvalue()
    assert f"LEAKED BY: entitlement {bought.id} buyer {buyer.username}" in text
    assert bought.source in text
    assert all(other.id not in text for other in others)
    clean = tmp_path / "unrelated.csv"
    pd.read_csv(ADULT_CSV, nrows=300).to_csv(clean, index=False)
    with pytest.raises(SystemExit) as exit_info:
        call_command("trace_leak", str(clean), stdout=io.StringIO())
    assert exit_info.value.code == 1


def test_trace_leak_help_runs() -> None:
    result = subprocess.run(
        [str(REPO / ".venv/bin/python"), "manage.py", "trace_leak", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "FILE" in result.stdout
