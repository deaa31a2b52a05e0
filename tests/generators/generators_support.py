"""Helpers for generator tests (importable by name: conftest modules clash across test folders)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[2]
ADULT_CSV = adult_csv()


class _Evaluates:
    """Pickles to ``eval(expression)``: whatever the expression does runs when the file is loaded."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (eval, (self.expression,))


def hostile_pickle(expression: str) -> bytes:
    return pickle.dumps(_Evaluates(expression))


def fake_model(frame_expression: str) -> bytes:
    """A pickle of an object whose ``sample(num_rows)`` returns ``frame_expression`` (``n`` is num_rows)."""
    return hostile_pickle(
        "type('Fake', (), {'sample': lambda self, num_rows: "
        f"(lambda pd, n: {frame_expression})(__import__('pandas'), num_rows)}})()"
    )
