"""Issue 18, item 13: a certificate's histogram of a small table must not approach individual values.

The attack: on a 20-row table the chart's upper edge was the interpolated 99th percentile, 811,034, next to
the one unique salary of 987,654. The engine's chart builder now uses round edges between the
``MIN_CELL``-th smallest and largest values and at least ``MIN_CELL`` real rows per bin.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from marketplace.certification.engine import charts
from marketplace.certification.engine.schema import clean_table, resolve_columns

UNIQUE_SALARY = 987_654


def _chart(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict:
    columns = resolve_columns(real, None)
    document = charts.build(clean_table(real, columns), clean_table(synthetic, columns), columns)
    return {marginal["column"]: marginal for marginal in document["marginals"]}


def _salaries(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    salary = np.append(rng.integers(30_249, 95_000, rows - 1), UNIQUE_SALARY)
    return pd.DataFrame({"salary": salary.astype(float), "age": rng.integers(18, 80, rows).astype(float)})


@pytest.mark.parametrize("seed", range(5))
def test_histogram_of_a_20_row_table_reveals_no_individual_value(seed: int) -> None:
    real = _salaries(20, seed)
    synthetic = _salaries(200, seed + 100)
    chart = _chart(real, synthetic)["salary"]
    edges, shares = chart["bin_edges"], chart["real"]
    text = json.dumps(chart)

    others = np.sort(real["salary"].to_numpy())[:-1]
    # No edge comes anywhere near the unique value: all stay below the largest of the other 19 salaries
    # rounded up to the chart's step, far under 987,654.
    assert edges and max(edges) < 200_000
    assert "9876" not in text and "811" not in text.replace(".0", "")
    # Each bin holds at least MIN_CELL real rows.
    assert all(round(share * len(real)) >= charts.MIN_CELL for share in shares)
    # Edges are round numbers, not interpolations between two people's values.
    assert not set(edges) & set(others)
    assert all(float(edge) == round(edge, -2) for edge in edges)


def test_tiny_tables_get_no_histogram_at_all() -> None:
    real = _salaries(charts.MIN_HISTOGRAM_ROWS - 1, 7)
    chart = _chart(real, _salaries(100, 8))["salary"]
    assert (chart["bin_edges"], chart["real"], chart["synthetic"], chart["withheld"]) == ([], [], [], True)


def test_large_tables_keep_a_useful_histogram() -> None:
    rng = np.random.default_rng(3)
    real = pd.DataFrame({"hours": rng.normal(40, 12, 5000).round(1)})
    chart = _chart(real, real.sample(frac=1.0, random_state=1))["hours"]
    assert len(chart["bin_edges"]) >= 15
    assert chart["real"] == pytest.approx(chart["synthetic"])
    assert min(chart["real"]) * 5000 >= charts.MIN_CELL
