"""Synthex certification engine: quality and privacy figures for a synthetic table, in pure Python.

It imports no Django, DRF, Celery or storage code, so it runs in a worker, in the CLI and on a laptop::

    from marketplace.certification.engine import evaluate, load_table
    result = evaluate(load_table("syn.csv"), load_table("train.csv"), load_table("holdout.csv"), target="class")
    document = result.to_dict()

See docs/engine.md for every figure, the distance, the thresholds and their sources.
"""

from .config import EngineConfig
from .errors import EngineError
from .evaluate import ENGINE, Evaluation, evaluate
from .io import load_table

__all__ = ["ENGINE", "EngineConfig", "EngineError", "Evaluation", "evaluate", "load_table"]
