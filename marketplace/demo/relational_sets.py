"""The relational demo's data (no Django, so benchmarks can rebuild it): three related tables of the RAND
Health Insurance Experiment (bundled with statsmodels), split by entity, and an HMA sample of the train set.

A fifth of the persons, each with all their years, is held out; SDV's HMASynthesizer is fitted on the rest and
samples as many synthetic persons (with their years). Seeds fixed: the same sets every time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marketplace.certification.engine.relational_schema import split_by_entity
from marketplace.datasets.randhie import randhie_tables
from marketplace.generators import hma

if TYPE_CHECKING:
    import pandas as pd

# Enough persons for a meaningful set, few enough that HMA fits and samples in about a minute on 2 cores.
PERSONS = 1500
ENTITY = "persons"


@dataclass(frozen=True)
class DemoSets:
    synthetic: dict[str, pd.DataFrame]
    train: dict[str, pd.DataFrame]
    holdout: dict[str, pd.DataFrame]
    metadata: dict[str, Any]


def demo_sets(*, log: Callable[[str], None] = print, label: str = "relational demo") -> DemoSets:
    """The demo's synthetic, train and holdout sets and their SDV multi-table metadata (HMA fit: about a
    minute on 2 cores)."""
    tables, metadata = randhie_tables(PERSONS)
    train, holdout = split_by_entity(tables, metadata, holdout_share=0.2, seed=0, entity=ENTITY)
    log(f"  {label}: fitting HMA on {len(train['persons']):,} persons and {len(train['years']):,} years…")
    model = hma.fit_hma(train, metadata, seed=0, progress=lambda stage, percent: None)
    synthetic = hma.sample_entities(model, entity=ENTITY, rows=len(train[ENTITY]), seed=1)
    return DemoSets(synthetic=synthetic, train=train, holdout=holdout, metadata=metadata)
