"""Benchmark of certificate v2 privacy on Adult, with SDMetrics' DCR metrics and Anonymeter timed beside it.

    .venv/bin/python bench/privacy.py [--runs 3] [--timeout 120] [--skip-shadow] [--skip-others]

Adult (train 80 % / holdout 20 %, a GaussianCopula sample of holdout size): the median wall time of the
engine's privacy section and of a full ``evaluate`` (the certificate without the shadow attack); SDMetrics'
DCRBaselineProtection and DCROverfittingProtection and Anonymeter's three evaluators in child processes
("did not finish in N s" past the timeout); then the shadow-model attack as the fit job runs it
(GaussianCopula refits on 1,000-row subsets, within its 150 s budget).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marketplace.certification.engine import EngineConfig, evaluate, privacy  # noqa: E402
from marketplace.certification.engine.schema import clean_table, resolve_columns  # noqa: E402
from marketplace.datasets import load_adult  # noqa: E402


def _split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(0).permutation(len(table))
    cut = int(len(table) * 0.8)
    return table.iloc[order[:cut]].reset_index(drop=True), table.iloc[order[cut:]].reset_index(drop=True)


def _synthesizer(train: pd.DataFrame):  # noqa: ANN202 - an SDV synthesizer
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    return GaussianCopulaSynthesizer(
        Metadata.detect_from_dataframes({"table": train}), enforce_min_max_values=True
    )


def _other(job: str, synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, queue) -> None:  # noqa: ANN001
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    metadata = {
        "columns": {
            c: {"sdtype": "numerical" if pd.api.types.is_numeric_dtype(train[c]) else "categorical"}
            for c in train
        }
    }
    if job == "sdmetrics_dcr_baseline":
        from sdmetrics.single_table import DCRBaselineProtection

        DCRBaselineProtection.compute_breakdown(train, synthetic, metadata, "adult")
    elif job == "sdmetrics_dcr_overfitting":
        from sdmetrics.single_table import DCROverfittingProtection

        DCROverfittingProtection.compute_breakdown(train, synthetic, holdout, metadata, "adult")
    else:
        from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

        columns = list(train.columns)
        if job == "anonymeter_singling_out":
            SinglingOutEvaluator(ori=train, syn=synthetic, control=holdout, n_attacks=1000).evaluate(
                mode="multivariate"
            )
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
    queue.put(time.perf_counter() - start)


def _timed(job: str, tables: tuple[pd.DataFrame, ...], timeout: float) -> str:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.get_context("fork").Process(target=_other, args=(job, *tables, queue))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return f"did not finish in {timeout:.0f} s"
    return f"{queue.get():8.2f} s" if not queue.empty() else "failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--skip-shadow", action="store_true")
    parser.add_argument("--skip-others", action="store_true")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    train, holdout = _split(load_adult())
    model = _synthesizer(train)
    model.fit({"table": train})
    sampled = model.sample(len(holdout))
    synthetic = sampled["table"] if isinstance(sampled, dict) else sampled
    print(
        f"Adult: train {len(train)}, holdout {len(holdout)}, synthetic {len(synthetic)} rows, {len(train.columns)} columns"
    )

    columns = resolve_columns(train, None)
    cleaned = [clean_table(t, columns) for t in (synthetic, train, holdout)]
    privacy_times, full_times = [], []
    for _ in range(arguments.runs):
        start = time.perf_counter()
        section, _, _ = privacy.assess(
            *cleaned, columns, EngineConfig(), np.random.default_rng(0), lambda p: None
        )
        privacy_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        document = evaluate(synthetic, train, holdout, target="class").to_dict()
        full_times.append(time.perf_counter() - start)
    failed = [t["id"] for t in section["tests"] if not t["passed"]]
    print(
        f"  engine privacy section: median {statistics.median(privacy_times):.2f} s over {arguments.runs} runs {sorted(privacy_times)}"
    )
    print(
        f"  full certificate (no shadow attack): median {statistics.median(full_times):.2f} s {sorted(full_times)}"
    )
    print(
        f"  privacy {document['privacy']['grade']} passed={document['privacy']['passed']} failed={failed} tests={len(section['tests'])}"
    )
    if not arguments.skip_others:
        for job, what in (
            ("sdmetrics_dcr_baseline", "SDMetrics DCRBaselineProtection"),
            ("sdmetrics_dcr_overfitting", "SDMetrics DCROverfittingProtection"),
            ("anonymeter_singling_out", "Anonymeter singling-out, multivariate, 1000 attacks"),
            ("anonymeter_linkability", "Anonymeter linkability, 1000 attacks"),
            ("anonymeter_inference", "Anonymeter inference, every column as secret, 1000 attacks"),
        ):
            print(f"  {what:<62} {_timed(job, (synthetic, train, holdout), arguments.timeout)}")
    if not arguments.skip_shadow:
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.test")
        from marketplace.generators.shadow import run_shadow_attack, sdv_fit_and_sample

        start = time.perf_counter()
        result = run_shadow_attack(sdv_fit_and_sample(lambda: _synthesizer(train), "table"), train, None)
        seconds = time.perf_counter() - start
        worst = max((t["tpr_at_lowest_fpr"]["tpr"] or 0.0 for t in result.get("targets", [])), default=None)
        print(
            f"  shadow-model attack (GaussianCopula): {seconds:.1f} s, ran={result['ran']} "
            f"runs={result.get('runs')} highest target TPR={worst} {result.get('reason', '')}"
        )


if __name__ == "__main__":
    main()
