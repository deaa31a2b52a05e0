"""Benchmark of the certification engine, with SDMetrics and Anonymeter timed side by side on the same data.

    .venv/bin/python bench/certify.py [--runs 3] [--timeout 120] [--large-rows 1000000] [--skip-large]
                                      [--skip-adult] [--skip-relational]

Prints, for Adult (train 80% / holdout 20%, GaussianCopula samples of holdout and of train size), the
median wall time of a full ``evaluate`` and of its quality part, the certificate v2 quality figures (score,
grade, each part beside its holdout reference, drifted columns) beside SDMetrics' QualityReport (under
SDV's detected metadata) and mostlyai-qa's accuracy report on the same data, and the time SDMetrics /
Anonymeter / mostlyai-qa need ("did not finish in N s" past the timeout); then a large table
(bootstrapped Adult, jittered) with the engine's wall time and peak RSS, measured in a child process;
then the relational certificate (``evaluate_relational``, issue 20) on the relational demo product's data
(``seed_demo``: RAND HIE plans → years ← persons, 1,500 persons split by entity, an HMA sample) beside
SDMetrics' multi-table QualityReport on the same data (bench/relational.py's ``report``), against the 60 s
target.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marketplace.certification.engine import EngineConfig, evaluate, load_table  # noqa: E402
from marketplace.datasets import adult_csv  # noqa: E402

ADULT = adult_csv()


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
        queue.put((f"failed: {type(error).__name__}: {error}"[:200], None, None))


def _sdv_metadata(table: pd.DataFrame) -> dict:
    from sdv.metadata import Metadata

    return Metadata.detect_from_dataframes({"adult": table}).tables["adult"].to_dict()


def _mostlyai_qa(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame) -> dict:
    from mostlyai import qa

    with tempfile.TemporaryDirectory() as folder:
        _, metrics = qa.report(
            syn_tgt_data=synthetic,
            trn_tgt_data=train,
            hol_tgt_data=holdout,
            report_path=Path(folder) / "report.html",
        )
    return metrics.model_dump(mode="json") if metrics is not None else {}


def _run_job(queue: multiprocessing.Queue, job: str, paths: dict) -> None:
    warnings.simplefilter("ignore")
    synthetic, train, holdout = (pd.read_parquet(paths[k]) for k in ("synthetic", "train", "holdout"))
    metadata = _metadata(train)
    figures = None
    start = time.perf_counter()
    if job == "sdmetrics_quality":
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(train, synthetic, _sdv_metadata(train), verbose=False)
        properties = report.get_properties().set_index("Property")["Score"]
        figures = {
            "score": report.get_score(),
            "column_shapes": properties["Column Shapes"],
            "column_pair_trends": properties["Column Pair Trends"],
        }
    elif job == "mostlyai_qa":
        figures = _mostlyai_qa(synthetic, train, holdout)
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
    queue.put(
        (time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, figures)
    )


def _timed(job: str, paths: dict, timeout: float) -> tuple[float | str | None, float | None, dict | None]:
    """Wall seconds, peak RSS (MiB) and figures of one job in a fresh process, (None, None, None) past
    ``timeout``, or the error text when the job failed."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.get_context("fork").Process(target=_run_child, args=(queue, job, paths))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return None, None, None
    return queue.get() if not queue.empty() else ("failed: no result", None, None)


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


JOBS = (
    ("sdmetrics_quality", "SDMetrics QualityReport (column shapes + pair trends)"),
    ("mostlyai_qa", "mostlyai-qa report (accuracy, similarity, distances)"),
    ("sdmetrics_dcr_overfitting", "SDMetrics DCROverfittingProtection (DCR vs holdout, all rows)"),
    ("anonymeter_singling_out", "Anonymeter singling-out, multivariate, 1000 attacks"),
    ("anonymeter_linkability", "Anonymeter linkability, 1000 attacks"),
    ("anonymeter_inference", "Anonymeter inference, every column as secret, 1000 attacks"),
)


def _timed_evaluate(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame) -> tuple:
    """One full evaluation: total seconds, seconds of its quality part (prepare done → ML efficacy and
    the quality composite done) and the document."""
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def progress(stage: str, percent: int) -> None:
        marks.setdefault(stage, time.perf_counter() - start)
        marks[f"{stage}_last"] = time.perf_counter() - start

    result = evaluate(synthetic, train, holdout, target="class", progress=progress)
    total = time.perf_counter() - start
    quality_seconds = marks.get("ml_efficacy_last", total) - marks.get("prepare_last", 0.0)
    return total, quality_seconds, result.to_dict()


def _print_quality(document: dict, sdmetrics: dict | None, mostly: dict | None) -> None:
    section = document["quality"]
    fidelity = section["fidelity"]
    print(
        f"    quality v2: score {section['score']:.3f} grade {section['grade']} (band {fidelity['band_grade']}, "
        f"defects {fidelity['defects'] or 'none'}); marginals {fidelity['marginals']:.3f}, structure "
        f"{fidelity['structure']:.3f}, overall {fidelity['overall']:.3f}"
    )
    print(f"      {'part':<15}{'synthetic':>10}{'holdout':>10}{'baseline':>10}{'skill':>8}")
    for name, part in fidelity["parts"].items():
        print(
            f"      {name:<15}{part['value']:>10.3f}{part['reference']:>10.3f}{part['baseline']:>10.3f}"
            f"{part['skill']:>8.3f}"
        )
    diversity = section["diversity"]
    print(
        "      distinct rows {:.3f} (holdout {:.3f}), coverage {:.3f} ({:.3f}), precision {:.3f} ({:.3f})".format(
            diversity["distinct_share"]["value"],
            diversity["distinct_share"]["reference"],
            diversity["coverage"]["value"],
            diversity["coverage"]["reference"],
            diversity["precision"]["value"],
            diversity["precision"]["reference"],
        )
    )
    print(f"      drifted columns: {[d['statement'] for d in section['drifted_columns']] or 'none'}")
    print(f"      misshapen columns: {[d['column'] for d in section['misshapen_columns']] or 'none'}")
    reference = section["reference"]
    print(
        f"    engine's SDMetrics figures: score {section['sdmetrics_score']:.4f} (holdout "
        f"{reference['sdmetrics_score']:.4f}), shapes {section['column_shapes']['score']:.4f}, pair trends "
        f"{section['column_pair_trends']['score']:.4f}"
    )
    if sdmetrics:
        print(
            f"    SDMetrics QualityReport (SDV-detected metadata): score {sdmetrics['score']:.4f}, shapes "
            f"{sdmetrics['column_shapes']:.4f}, pair trends {sdmetrics['column_pair_trends']:.4f} "
            f"(difference {section['sdmetrics_score'] - sdmetrics['score']:+.4f})"
        )
    if mostly:
        accuracy = mostly.get("accuracy") or {}
        print(
            "    mostlyai-qa accuracy: overall {}, univariate {}, bivariate {}, trivariate {}, "
            "discriminator-free holdout max {}".format(
                accuracy.get("overall"),
                accuracy.get("univariate"),
                accuracy.get("bivariate"),
                accuracy.get("trivariate"),
                accuracy.get("overall_max"),
            )
        )
        print(f"    mostlyai-qa other figures: { {k: v for k, v in mostly.items() if k != 'accuracy'} }")


def _adult(folder: Path, runs: int, timeout: float) -> None:
    table = load_table(ADULT)
    train, holdout = _split(table)
    small, large = _gaussian_copula(train, [len(holdout), len(train)])
    print(f"Adult: train {len(train)} rows, holdout {len(holdout)} rows, {len(table.columns)} columns")
    for label, synthetic in (("holdout-size", small), ("train-size", large)):
        paths = _save(folder, f"adult-{label}", {"synthetic": synthetic, "train": train, "holdout": holdout})
        totals, quality_parts = [], []
        for _ in range(runs):
            total, quality_seconds, document = _timed_evaluate(synthetic, train, holdout)
            totals.append(total)
            quality_parts.append(quality_seconds)
        print(
            f"\n  synthetic {label} ({len(synthetic)} rows): engine median {statistics.median(totals):.2f} s "
            f"(quality part {statistics.median(quality_parts):.2f} s) over {runs} runs"
        )
        print(
            f"    privacy {document['privacy']['grade']} passed={document['privacy']['passed']}, "
            f"plausibility {document.get('plausibility', {}).get('grade')}"
        )
        timings = {job: _timed(job, paths, timeout) for job, _ in JOBS}
        _print_quality(document, timings["sdmetrics_quality"][2], timings["mostlyai_qa"][2])
        for job, what in JOBS:
            print(f"    {what:<62} {_fmt(timings[job][0], timeout)}")


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
    seconds, peak, _ = _timed("engine", paths, timeout=max(timeout, 600))
    print(
        f"\nLarge: synthetic {rows} rows, train {rows} rows, holdout {rows // 4} rows, {len(table.columns)} columns"
    )
    print(
        f"  engine (child process, includes reading Parquet): {_fmt(seconds, max(timeout, 600))}, peak RSS {peak or 0:.0f} MiB"
    )


RELATIONAL_TARGET_SECONDS = 60.0


def _relational() -> None:
    """The relational certificate's wall time on the demo product's data, SDMetrics' beside it."""
    sys.path.insert(0, str(REPO / "bench"))
    from relational import report

    from marketplace.demo.relational_sets import demo_sets

    started = time.perf_counter()
    sets = demo_sets(log=print, label="relational demo")
    rows = ", ".join(f"{name} {len(table):,}" for name, table in sets.synthetic.items())
    print(
        f"\nRelational demo: synthetic {rows} rows; train persons {len(sets.train['persons']):,}, holdout "
        f"persons {len(sets.holdout['persons']):,} (HMA fit and sample {time.perf_counter() - started:.1f} s)"
    )
    figures = report("relational certificate", sets.synthetic, sets.train, sets.holdout, sets.metadata)
    verdict = "within" if figures["seconds"] <= RELATIONAL_TARGET_SECONDS else "OVER"
    print(
        f"  relational certificate {figures['seconds']:.1f} s ({verdict} the {RELATIONAL_TARGET_SECONDS:.0f} s "
        f"target), SDMetrics multi-table QualityReport {figures['sdmetrics_seconds']:.1f} s (score "
        f"{figures['sdmetrics_score']:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--large-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-adult", action="store_true")
    parser.add_argument("--skip-relational", action="store_true")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        if not arguments.skip_adult:
            _adult(Path(folder), arguments.runs, arguments.timeout)
        if not arguments.skip_large:
            _large(Path(folder), arguments.large_rows, arguments.timeout)
    if not arguments.skip_relational:
        _relational()


if __name__ == "__main__":
    main()
