"""Benchmark of the relational certification (issue 20), with SDMetrics' multi-table QualityReport beside it.

    .venv/bin/python bench/relational.py [--hma]

Data: the RAND Health Insurance Experiment shipped with statsmodels, as three tables (plans → persons →
yearly visits; tests/relational/relational_data.py), split by entity (30 % of persons with all their years
to holdout). Synthetic sets: an independent per-table sampler with child counts drawn from train's (cheap,
honest, no relational structure), the same with 10 % of entities copied from train with their children,
and fresh real entities (half of train against the other half). With ``--hma`` also SDV's HMASynthesizer on
persons → years (SDV's community HMA refuses schemas deeper than two levels). Prints the wall time of
``evaluate_relational``, the relational figures, the entity-level privacy verdict and SDMetrics' score.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "relational")]

from relational_data import independent, leak_entities, metadata, randhie  # noqa: E402

from marketplace.certification.engine.relational import evaluate_relational, split_by_entity  # noqa: E402


def report(label: str, synthetic: dict, train: dict, holdout: dict, meta: dict) -> dict:
    """Time ``evaluate_relational`` on one set and SDMetrics' multi-table QualityReport on the same data,
    print both on two lines and return the figures (``seconds``, ``document``, ``sdmetrics_score``,
    ``sdmetrics_seconds``)."""
    started = time.perf_counter()
    document = evaluate_relational(synthetic, train, holdout, meta).to_dict()
    seconds = time.perf_counter() - started
    relational, entity = document["relational"], document["privacy"]["entity_level"]
    failed = [t["name"] for t in entity["tests"] if not t["passed"]]
    print(
        f"{label:<28} {seconds:6.1f} s  relational {relational['grade']} {relational['score']:.3f} "
        f"(cardinality {relational['cardinality_shape_similarity']:.3f} / real "
        f"{relational['reference']['cardinality_shape_similarity']:.3f}, pair trends "
        f"{relational['pair_trends']:.3f} / real {relational['reference']['pair_trends']:.3f})  "
        f"entity privacy {'pass' if entity['passed'] else 'FAIL ' + ', '.join(failed)}  "
        f"quality {document['quality']['grade']}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.multi_table import QualityReport

        started = time.perf_counter()
        quality_report = QualityReport()
        quality_report.generate(train, synthetic, meta, verbose=False)
        sdmetrics_seconds = time.perf_counter() - started
        print(
            f"{'':<28} SDMetrics multi-table QualityReport {quality_report.get_score():.3f} in "
            f"{sdmetrics_seconds:.1f} s"
        )
    return {
        "seconds": seconds,
        "document": document,
        "sdmetrics_score": quality_report.get_score(),
        "sdmetrics_seconds": sdmetrics_seconds,
    }


def _hma(train: dict, holdout: dict) -> None:
    from sdv.metadata import Metadata
    from sdv.multi_table import HMASynthesizer

    meta = metadata()
    del meta["tables"]["plans"]
    meta["relationships"] = meta["relationships"][1:]
    two_train = {name: train[name] for name in ("persons", "years")}
    two_holdout = {name: holdout[name] for name in ("persons", "years")}
    started = time.perf_counter()
    synthesizer = HMASynthesizer(Metadata.load_from_dict(meta), verbose=False)
    synthesizer.fit(two_train)
    synthetic = synthesizer.sample_scale(scale=1.0)
    print(f"HMA fit and sample on persons → years: {time.perf_counter() - started:.1f} s")
    report("HMA (persons → years)", synthetic, two_train, two_holdout, meta)
    report(
        "HMA + 10 % entities copied", leak_entities(synthetic, two_train, 0.1), two_train, two_holdout, meta
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hma", action="store_true", help="also fit SDV's HMASynthesizer (minutes)")
    arguments = parser.parse_args()
    meta = metadata()
    tables = randhie()
    train, holdout = split_by_entity(tables, meta, holdout_share=0.3, seed=0)
    fit_half, fresh_half = split_by_entity(train, meta, holdout_share=0.5, seed=1)
    print({name: len(table) for name, table in tables.items()}, "rows; entity table persons")
    honest = independent(train)
    report("independent tables", honest, train, holdout, meta)
    report("independent + 10 % copied", leak_entities(honest, train, 0.1), train, holdout, meta)
    report("fresh real entities", fresh_half, fit_half, holdout, meta)
    if arguments.hma:
        _hma(train, holdout)


if __name__ == "__main__":
    main()
