"""Benchmark of the certification engine, with SDMetrics and Anonymeter timed side by side on the same data.

    .venv/bin/python bench/certify.py [--runs 3] [--timeout 120] [--large-rows 1000000] [--skip-large]

Prints, for Adult (train 80% / holdout 20%, GaussianCopula samples of holdout and of train size), the
median wall time of a full ``evaluate`` and the time SDMetrics / Anonymeter need for the same metric
("did not finish in N s" past the timeout); then a large table (bootstrapped Adult, jittered) with the
engine's wall time and peak RSS, measured in a child process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ADULT = adult_csv()

from marketplace.certification.engine import EngineConfig, evaluate, load_table  # noqa: E402


def _split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(0).permutation(len(table))
    cut = int(len(table) * 0.8)
    return table.iloc[order[:cut]].reset_index(drop=True), table.iloc[order[cut:]].reset_index(drop=True)


def _gaussian_copula(train: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    synthesizer = GaussianCopulaSynthesizer(Metadata.detect_from_dataframes({"adult": train}))
    synthesizer.fit({"adult": train})
    samples = []
    for size in sizes:
        sample = synthesizer.sample(size)
        samples.append(sample["adult"] if isinstance(sample, dict) else sample)
    return samples


def _metadata(table: pd.DataFrame) -> dict:
    return {
        "columns": {
            c: {"sdtype": "numerical" if pd.api.types.is_numeric_dtype(table[c]) else "categorical"}
            for c in table
        }
    }


def _run_child(queue: multiprocessing.Queue, job: str, paths: dict) -> None:
    try:
        _run_job(queue, job, paths)
    except Exception as error:
        queue.put((f"failed: {type(error).__name__}: {error}"[:200], None))


def _run_job(queue: multiprocessing.Queue, job: str, paths: dict) -> None:
    warnings.simplefilter("ignore")
    synthetic, train, holdout = (pd.read_parquet(paths[k]) for k in ("synthetic", "train", "holdout"))
    metadata = _metadata(train)
    start = time.perf_counter()
    if job == "sdmetrics_quality":
        from sdmetrics.reports.single_table import QualityReport

        QualityReport().generate(train, synthetic, metadata, verbose=False)
    elif job == "sdmetrics_dcr_overfitting":
        from sdmetrics.single_table import DCROverfittingProtection

        DCROverfittingProtection.compute_breakdown(train, synthetic, holdout, metadata, "adult")
    elif job.startswith("anonymeter_"):
        from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

        columns = list(train.columns)
        if job == "anonymeter_singling_out":
            SinglingOutEvaluator(ori=train, syn=synthetic, control=holdout, n_attacks=1000).evaluate()
        elif job == "anonymeter_linkability":
            half = len(columns) // 2
            LinkabilityEvaluator(
                ori=train,
                syn=synthetic,
                control=holdout,
                aux_cols=(columns[:half], columns[half:]),
                n_attacks=1000,
            ).evaluate(n_jobs=2)
        else:
            for secret in columns:
                InferenceEvaluator(
                    ori=train,
                    syn=synthetic,
                    control=holdout,
                    aux_cols=[c for c in columns if c != secret],
                    secret=secret,
                    n_attacks=1000,
                ).evaluate(n_jobs=2)
    else:
        evaluate(synthetic, train, holdout, target="class", config=EngineConfig())
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _timed(job: str, paths: dict, timeout: float) -> tuple[float | str | None, float | None]:
    """Wall seconds and peak RSS (MiB) of one job in a fresh process, (None, None) past ``timeout``,
    or the error text when the job failed."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.get_context("fork").Process(target=_run_child, args=(queue, job, paths))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return None, None
    return queue.get() if not queue.empty() else ("failed: no result", None)


def _save(folder: Path, name: str, tables: dict[str, pd.DataFrame]) -> dict:
    paths = {}
    for key, table in tables.items():
        path = folder / f"{name}-{key}.parquet"
        table.to_parquet(path)
        paths[key] = str(path)
    return paths


def _fmt(seconds: float | str | None, timeout: float) -> str:
    if isinstance(seconds, str):
        return seconds
    return f"{seconds:8.2f} s" if seconds is not None else f"did not finish in {timeout:.0f} s"


def _plausibility_seconds(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, runs: int
) -> float:
    """Median wall time of the plausibility stage alone (rule discovery, validation, violation rates)."""
    from marketplace.certification.engine import plausibility
    from marketplace.certification.engine.schema import clean_table, resolve_columns

    columns = resolve_columns(train, None)
    tables = [clean_table(table, columns) for table in (synthetic, train, holdout)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plausibility.assess(*tables, columns, EngineConfig(), np.random.default_rng(0))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _adult(folder: Path, runs: int, timeout: float) -> None:
    table = load_table(ADULT)
    train, holdout = _split(table)
    small, large = _gaussian_copula(train, [len(holdout), len(train)])
    print(f"Adult: train {len(train)} rows, holdout {len(holdout)} rows, {len(table.columns)} columns")
    for label, synthetic in (("holdout-size", small), ("train-size", large)):
        paths = _save(folder, f"adult-{label}", {"synthetic": synthetic, "train": train, "holdout": holdout})
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            result = evaluate(synthetic, train, holdout, target="class")
            times.append(time.perf_counter() - start)
        document = result.to_dict()
        print(
            f"\n  synthetic {label} ({len(synthetic)} rows): engine median {statistics.median(times):.2f} s over {runs} runs"
        )
        print(
            f"    quality {document['quality']['score']:.3f} ({document['quality']['grade']}), "
            f"privacy {document['privacy']['grade']} passed={document['privacy']['passed']}, "
            f"dcr_share {document['privacy']['dcr_share']:.3f}, exact copies {document['privacy']['exact_match_rate']:.4f}"
        )
        rules = document["plausibility"]
        print(
            f"    plausibility {rules['score']:.3f} ({rules['grade']}), {len(rules['rules'])} rules, rows breaking any: "
            f"synthetic {rules['rows_violating_any']:.3f}, holdout {rules['holdout_rows_violating_any']:.3f}; "
            f"rule discovery + rates alone {_plausibility_seconds(synthetic, train, holdout, runs):.2f} s (median)"
        )
        for job, what in (
            ("sdmetrics_quality", "SDMetrics QualityReport (column shapes + pair trends)"),
            ("sdmetrics_dcr_overfitting", "SDMetrics DCROverfittingProtection (DCR vs holdout, all rows)"),
            ("anonymeter_singling_out", "Anonymeter singling-out, multivariate, 1000 attacks"),
            ("anonymeter_linkability", "Anonymeter linkability, 1000 attacks"),
            ("anonymeter_inference", "Anonymeter inference, every column as secret, 1000 attacks"),
        ):
            seconds, _ = _timed(job, paths, timeout)
            print(f"    {what:<62} {_fmt(seconds, timeout)}")


def _large(folder: Path, rows: int, timeout: float) -> None:
    table = load_table(ADULT)
    rng = np.random.default_rng(1)
    numeric = [c for c in table if pd.api.types.is_numeric_dtype(table[c])]

    def jittered(count: int) -> pd.DataFrame:
        frame = table.iloc[rng.integers(0, len(table), count)].reset_index(drop=True)
        for name in numeric:
            frame[name] = frame[name] + rng.normal(0, 0.05 * table[name].std(), count)
        return frame

    train, holdout, synthetic = jittered(rows), jittered(rows // 4), jittered(rows)
    paths = _save(folder, "large", {"synthetic": synthetic, "train": train, "holdout": holdout})
    del train, holdout, synthetic
    seconds, peak = _timed("engine", paths, timeout=max(timeout, 600))
    print(
        f"\nLarge: synthetic {rows} rows, train {rows} rows, holdout {rows // 4} rows, {len(table.columns)} columns"
    )
    print(
        f"  engine (child process, includes reading Parquet): {_fmt(seconds, max(timeout, 600))}, peak RSS {peak or 0:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--large-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-adult", action="store_true")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        if not arguments.skip_adult:
            _adult(Path(folder), arguments.runs, arguments.timeout)
        if not arguments.skip_large:
            _large(Path(folder), arguments.large_rows, arguments.timeout)


if __name__ == "__main__":
    main()
