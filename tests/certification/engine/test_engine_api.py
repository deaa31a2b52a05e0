"""The engine's public surface: import isolation, files, determinism, JSON, errors, progress, distances."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from engine_data import DATASETS, adult, independent_marginals, split

from marketplace.certification.engine import EngineConfig, EngineError, evaluate, load_table
from marketplace.certification.engine.distance import nearest

REPO = Path(__file__).resolve().parents[3]
CONFIG = EngineConfig(attack_count=200)


def test_engine_imports_without_django_celery_storage_or_sdv() -> None:
    code = (
        "import sys; import marketplace.certification.engine as e; "
        "bad = [m for m in ('django', 'rest_framework', 'celery', 'storages', 'boto3', 'sdv', 'torch', 'sdmetrics')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO)},
    )

    assert completed.stdout.strip() == ""


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl", ".data"])
def test_load_table_reads_each_format(tmp_path: Path, suffix: str) -> None:
    table = DATASETS["wine"]().head(20)
    path = tmp_path / f"table{suffix}"
    if suffix == ".parquet":
        table.to_parquet(path)
    elif suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True)
    else:
        table.to_csv(path, index=False)

    loaded = load_table(path)

    assert list(loaded.columns) == list(table.columns)
    assert np.allclose(loaded["alcohol"].to_numpy(), table["alcohol"].to_numpy())
    assert loaded["target"].tolist() == table["target"].tolist()


def test_load_table_sniffs_parquet_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    DATASETS["wine"]().head(5).to_parquet(path)

    assert len(load_table(path)) == 5


@pytest.mark.parametrize("content", [b"", b"a,b\n"])
def test_load_table_refuses_empty_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)

    with pytest.raises(EngineError):
        load_table(path)


def test_load_table_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        load_table(tmp_path / "absent.csv")


def test_same_inputs_and_seed_give_identical_documents() -> None:
    train, holdout = split(DATASETS["breast_cancer"]())
    synthetic = independent_marginals(train, len(holdout))
    first = evaluate(synthetic, train, holdout, target="target", config=CONFIG).to_dict()
    second = evaluate(synthetic, train, holdout, target="target", config=CONFIG).to_dict()

    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_document_is_strict_json_with_the_contract_fields() -> None:
    train, holdout = split(adult(4_000))
    synthetic = independent_marginals(train, len(holdout))
    document = evaluate(synthetic, train, holdout, target="class", config=CONFIG).to_dict()
    text = json.dumps(document, allow_nan=False)

    assert document["engine"] == {"name": "synthex-engine", "version": "2.0.0"}
    assert set(document) == {"quality", "plausibility", "privacy", "charts", "parameters", "engine"}
    assert {
        "score",
        "grade",
        "column_shapes",
        "column_pair_trends",
        "coverage",
        "validity",
        "ml_efficacy",
    } <= set(document["quality"])
    assert {"discriminator_auc", "thresholds"} <= set(document["quality"])
    assert {"sdmetrics_score", "reference", "drifted_columns", "fidelity", "diversity"} <= set(
        document["quality"]
    )
    assert {
        "grade",
        "passed",
        "exact_match_rate",
        "exact_match_rate_holdout",
        "dcr_share",
        "dcr_share_ci",
    } <= set(document["privacy"])
    assert {
        "dcr",
        "nndr",
        "membership_inference",
        "singling_out",
        "linkability",
        "attribute_inference",
    } <= set(document["privacy"])
    assert {"baseline", "tests"} <= set(document["privacy"])
    assert document["parameters"]["libraries"]["numpy"] == np.__version__
    assert document["parameters"]["rows"]["sampled"] == {"synthetic": False, "train": False, "holdout": False}
    assert "NaN" not in text and "Infinity" not in text


def test_charts_hold_no_rare_category_label() -> None:
    train, holdout = split(adult())
    counts = train["native-country"].value_counts()
    rare = [label for label, count in counts.items() if count < 5]
    document = evaluate(independent_marginals(train, 2_000), train, holdout, config=CONFIG).to_dict()
    text = json.dumps(document["charts"])

    assert rare
    assert all(json.dumps(label) not in text for label in rare)


def test_tables_above_max_rows_are_sampled_and_said_so() -> None:
    train, holdout = split(DATASETS["breast_cancer"]())
    config = EngineConfig(max_rows=200, privacy_max_rows=100, attack_count=50)
    document = evaluate(independent_marginals(train, 300), train, holdout, config=config).to_dict()
    rows = document["parameters"]["rows"]

    assert rows["used"] == {"synthetic": 200, "train": 200, "holdout": len(holdout)}
    assert rows["sampled"] == {"synthetic": True, "train": True, "holdout": False}
    assert rows["privacy"]["synthetic_rows"] == 100
    assert rows["privacy"]["holdout_rows"] == 100


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop_column", "lacks the train columns"),
        ("bad_target", "target column"),
        ("one_row", "fewer than 2 rows"),
    ],
)
def test_evaluate_refuses_inputs_it_cannot_certify(change: str, message: str) -> None:
    train, holdout = split(DATASETS["wine"]())
    synthetic = train.copy()
    target = "target"
    if change == "drop_column":
        synthetic = synthetic.drop(columns=["alcohol"])
    elif change == "bad_target":
        target = "no_such_column"
    else:
        synthetic = synthetic.head(1)
    before = synthetic.copy()

    with pytest.raises(EngineError, match=message):
        evaluate(synthetic, train, holdout, target=target, config=CONFIG)
    pd.testing.assert_frame_equal(synthetic, before)


def test_progress_runs_through_the_stages_to_one_hundred() -> None:
    train, holdout = split(DATASETS["wine"]())
    calls: list[tuple[str, int]] = []
    evaluate(
        independent_marginals(train, 50),
        train,
        holdout,
        config=CONFIG,
        progress=lambda s, p: calls.append((s, p)),
    )
    percents = [percent for _, percent in calls]

    assert percents == sorted(percents)
    assert calls[0] == ("prepare", 0)
    assert calls[-1] == ("charts", 100)
    assert {"quality", "privacy"} <= {stage for stage, _ in calls}


def test_nearest_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    reference = rng.random((700, 9))
    query = np.vstack([rng.random((300, 9)), reference[:20]])
    result = nearest(query, reference, second=True, prefix_rows=100, n_jobs=2)
    squared = ((query[:, None, :] - reference[None, :, :]) ** 2).sum(axis=2)
    ordered = np.sort(squared, axis=1)

    assert np.array_equal(result.index, squared.argmin(axis=1))
    assert np.allclose(result.first, ordered[:, 0], rtol=0, atol=1e-12)
    assert np.allclose(result.second, ordered[:, 1], rtol=0, atol=1e-12)
    assert np.allclose(result.prefix, squared[:, :100].min(axis=1), rtol=0, atol=1e-12)
    assert np.all(result.first[300:] == 0.0)
