"""The fingerprint: certified figures barely move, tracing names the right copy and nobody else."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
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


def test_marks_keep_value_counts_and_move_each_value_by_one_unit(adult: pd.DataFrame) -> None:
    synthetic = _shuffled_columns(adult.head(1000), 0)
    marked, plan, _ = _marked(synthetic, "ent_a")
    assert plan.allowance == 1
    changed = 0
    for column in plan.numeric:
        before, after = synthetic[column.name].to_numpy(), marked[column.name].to_numpy()
        assert set(np.abs(after - before)) <= {0, 1}
        counts = pd.Series(after).value_counts().sub(pd.Series(before).value_counts(), fill_value=0)
        assert counts.abs().max() <= plan.allowance
        assert after.min() == before.min() and after.max() == before.max()
        changed += int((after != before).sum())
    assert changed > 500
    text = [c.name for c in plan.columns if c.kind == "text"]
    assert marked[text].equals(synthetic[text])


def test_certified_figures_move_at_most_0_005(adult: pd.DataFrame) -> None:
    from marketplace.certification.engine.evaluate import evaluate

    synthetic = _shuffled_columns(adult.head(1000), 0)
    train, holdout = (
        adult.iloc[1000:2000].reset_index(drop=True),
        adult.iloc[2000:2250].reset_index(drop=True),
    )
    marked, _, _ = _marked(synthetic, "ent_a")
    original, copy = evaluate(synthetic, train, holdout).to_dict(), evaluate(marked, train, holdout).to_dict()
    for section, name in [
        ("quality", "score"),
        ("quality", "column_shapes"),
        ("quality", "column_pair_trends"),
        ("privacy", "exact_match_rate"),
        ("privacy", "dcr_share"),
    ]:
        before, after = original[section][name], copy[section][name]
        before = before["score"] if isinstance(before, dict) else before
        after = after["score"] if isinstance(after, dict) else after
        assert abs(before - after) <= 0.005, (section, name, before, after)
    assert (original["quality"]["grade"], original["privacy"]["grade"], original["privacy"]["passed"]) == (
        copy["quality"]["grade"],
        copy["privacy"]["grade"],
        copy["privacy"]["passed"],
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("share", [1.0, 0.1])
def test_trace_survives_format_change_partial_copy_shuffle_and_column_order(
    adult: pd.DataFrame, tmp_path: Path, fmt: str, share: float
) -> None:
    source = tmp_path / "source.parquet"
    adult.head(1000).to_parquet(source, index=False)
    plan = plan_file(source, "parquet")
    keys = [fp.fingerprint_key(b"test-secret", f"ent_{i}") for i in range(5)]
    delivered = tmp_path / f"copy.{fmt}"
    convert(source, "parquet", delivered, fmt, plan=plan, key=keys[2])
    leaked = read_any(delivered).to_pandas().sample(frac=share, random_state=7)
    leaked = leaked[list(reversed(leaked.columns))]
    resaved = tmp_path / "leak.csv"
    leaked.to_csv(resaved, index=False)
    observations = fp.observe(read_any(resaved), plan)
    scores = [fp.score(observations, key) for key in keys]
    assert fp.accuse(scores) == [2]


@pytest.mark.slow
def test_no_false_accusation_on_1000_non_leaked_files(adult: pd.DataFrame) -> None:
    """1,000 files that are not copies made with any candidate key: other buyers' copies, the unmarked
    original, and other synthetic tables of the same schema; none is pinned on the 20 candidate keys."""
    base = adult.head(200)
    base_table = pa.Table.from_pandas(base, preserve_index=False)
    plan = fp.plan_table(base_table.to_batches())
    candidates = [fp.fingerprint_key(b"test-secret", f"ent_{i}") for i in range(20)]
    pool = pa.Table.from_pandas(adult.iloc[200:3800], preserve_index=False)
    rng = np.random.default_rng(0)
    accused = 0
    worst = -np.inf
    for index in range(1000):
        kind = index % 3
        if kind == 0:
            table = base_table
        elif kind == 1:
            columns = [pool.column(name).take(rng.choice(pool.num_rows, 200)) for name in pool.column_names]
            table = pa.table(columns, names=pool.column_names)
        else:
            table = fp.mark_table(base_table, plan, fp.fingerprint_key(b"test-secret", f"other_{index}"))
        observations = fp.observe(table, plan)
        scores = [fp.score(observations, key) for key in candidates]
        accused += len(fp.accuse(scores))
        worst = max(worst, max(score.z for score in scores))
    assert accused == 0
    assert worst < 6


def test_plan_round_trips_and_reads_text_copies(adult: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(adult.head(50), preserve_index=False)
    plan = fp.plan_table(table.to_batches())
    assert fp.FingerprintPlan.from_dict(plan.to_dict()) == plan
    text = pa.Table.from_pandas(adult.head(50).astype(str), preserve_index=False)
    assert np.array_equal(fp.anchors(table, plan), fp.anchors(text, plan))


def test_decimal_columns_keep_their_decimals(tmp_path: Path) -> None:
    frame = pd.DataFrame({"price": np.round(np.linspace(1, 50, 400), 2), "label": ["a", "b"] * 200})
    marked, plan, _ = _marked(frame, "ent_d")
    assert plan.numeric[0].decimals == 2
    assert np.allclose(np.round(marked["price"], 2), marked["price"])
    assert np.abs(marked["price"] - frame["price"]).max() <= 0.0100001


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
    leaked = pd.read_parquet(io.BytesIO(links[bought.id])).sample(frac=0.3, random_state=1)
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
