"""SDV synthesizers fitted on the platform: constraint checks, building, fitting with per-epoch progress, and
the evaluation sample. No Django: it takes and returns pandas tables and plain values (the caller stores
the model and writes progress where the page reads it).

SDV and torch load on first use (inside the functions), not when this module is imported.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketplace.generators.errors import GeneratorError

if TYPE_CHECKING:
    import pandas as pd

TABLE = "table"
DEFAULT_EPOCHS = 100
MAX_EPOCHS = 2000
# The values of ``models.Synthesizer`` this module fits (plain strings: no Django here).
GAUSSIAN_COPULA = "gaussian_copula"
NEURAL = ("ctgan", "tvae", "copula_gan")
SDV_SYNTHESIZERS = (GAUSSIAN_COPULA, *NEURAL)
CONSTRAINT_TYPES = ("FixedCombinations", "FixedIncrements", "Inequality", "Range", "OneHotEncoding")

Progress = Callable[[str, int], None]


def check_constraints(constraints: Any, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Validate constraint specs ``[{"type": "Inequality", "low_column_name": ..., ...}, ...]`` against the
    SDV 2.0 ``sdv.cag`` classes in ``CONSTRAINT_TYPES`` and the table's ``columns``; return them unchanged.
    """
    from sdv import cag

    if constraints in (None, ""):
        return []
    if not isinstance(constraints, list) or not all(isinstance(item, dict) for item in constraints):
        raise GeneratorError("bad_constraints", "Constraints must be a list of objects with a 'type'.")
    for item in constraints:
        _check_constraint(cag, item, set(columns))
    return constraints


def _check_constraint(cag: Any, item: dict[str, Any], known: set[str]) -> None:
    kind = item.get("type")
    if kind not in CONSTRAINT_TYPES:
        raise GeneratorError(
            "bad_constraints", f"Unknown constraint {kind!r}; use one of {', '.join(CONSTRAINT_TYPES)}."
        )
    parameters = {key: value for key, value in item.items() if key != "type"}
    accepted = set(inspect.signature(getattr(cag, kind)).parameters) - {"table_name"}
    unknown = sorted(set(parameters) - accepted)
    if unknown:
        raise GeneratorError(
            "bad_constraints", f"{kind} takes {', '.join(sorted(accepted))}; not {', '.join(unknown)}."
        )
    named = [
        value for key, value in parameters.items() if key.endswith("column_name") or key == "column_names"
    ]
    for name in [n for value in named for n in (value if isinstance(value, list) else [value])]:
        if name not in known:
            raise GeneratorError("bad_constraints", f"{kind} names {name!r}, which is not a column.")
    try:
        getattr(cag, kind)(**parameters)
    except (TypeError, ValueError) as error:
        raise GeneratorError("bad_constraints", f"{kind}: {error}") from None


def build_synthesizer(
    synthesizer: str, sdv_metadata: dict[str, Any], parameters: Mapping[str, Any], constraints: list[dict]
) -> Any:
    """An unfitted SDV synthesizer for the single table ``TABLE`` (min/max enforced; epochs and batch size
    for the neural ones; the checked ``constraints`` added)."""
    from sdv import cag
    from sdv.metadata import Metadata
    from sdv.single_table import (
        CopulaGANSynthesizer,
        CTGANSynthesizer,
        GaussianCopulaSynthesizer,
        TVAESynthesizer,
    )

    metadata = Metadata.load_from_dict({"tables": {TABLE: sdv_metadata}})
    classes = {
        GAUSSIAN_COPULA: GaussianCopulaSynthesizer,
        "ctgan": CTGANSynthesizer,
        "tvae": TVAESynthesizer,
        "copula_gan": CopulaGANSynthesizer,
    }
    arguments: dict[str, Any] = {"enforce_min_max_values": True}
    if synthesizer in NEURAL:
        arguments.update(epochs=int(parameters.get("epochs", DEFAULT_EPOCHS)), verbose=True)
        if parameters.get("batch_size"):
            arguments["batch_size"] = int(parameters["batch_size"])
    model = classes[str(synthesizer)](metadata, **arguments)
    if constraints:
        model.add_constraints(
            [
                getattr(cag, item["type"])(**{k: v for k, v in item.items() if k != "type"})
                for item in constraints
            ]
        )
    return model


class EpochProgress(io.TextIOBase):
    """Reads tqdm's progress lines (CTGAN/TVAE with ``verbose``) and reports (epoch, epochs, losses)."""

    COUNTS = re.compile(r"(\d+)/(\d+) \[")
    LOSSES = re.compile(r"(Gen\.|Discrim\.|Loss:)\s*\(?\s*(-?\d+(?:\.\d+)?)")

    def __init__(self, report: Callable[[int, int, dict[str, float]], None]) -> None:
        self.report = report
        self.last = -1

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for line in re.split(r"[\r\n]", text):
            counts = self.COUNTS.search(line)
            if counts is None:
                continue
            epoch, epochs = int(counts.group(1)), int(counts.group(2))
            if epoch == self.last:
                continue
            self.last = epoch
            losses = {
                {"Gen.": "generator", "Discrim.": "discriminator", "Loss:": "loss"}[name]: float(value)
                for name, value in self.LOSSES.findall(line)
            }
            self.report(epoch, epochs, losses)
        return len(text)


@dataclass(frozen=True)
class FittedSynthesizer:
    """A fitted SDV synthesizer saved at ``path``, its evaluation sample, and per-epoch losses (neural)."""

    path: Path
    evaluation: pd.DataFrame
    loss_values: list[dict[str, float]]


def fit_synthesizer(
    synthesizer: str,
    sdv_metadata: dict[str, Any],
    parameters: Mapping[str, Any],
    constraints: list[dict],
    *,
    train: pd.DataFrame,
    seed: int,
    rows: int,
    model_path: Path,
    progress: Progress,
) -> FittedSynthesizer:
    """Fit on ``train`` with numpy seeded by ``seed``, sample ``rows`` evaluation rows (seed + 1), and save
    the model to ``model_path``. ``progress(stage, percent)`` goes 5 → 60 over the epochs. Raises
    ``GeneratorError`` (``fit_failed``) when SDV refuses the data."""
    import numpy as np

    losses: list[dict[str, float]] = []

    def on_epoch(epoch: int, epochs: int, loss: dict[str, float]) -> None:
        if loss:
            losses.append({"epoch": epoch, **loss})
        shown = " ".join(f"{key[0].upper()} {value:.2f}" for key, value in loss.items())
        progress(f"epoch {epoch}/{epochs} {shown}".strip(), 5 + int(55 * epoch / max(epochs, 1)))

    progress("fitting", 5)
    model = build_synthesizer(synthesizer, sdv_metadata, parameters, constraints)
    np.random.seed(seed)
    with (
        contextlib.redirect_stderr(EpochProgress(on_epoch)),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            model.fit({TABLE: train})
        except Exception as error:
            raise GeneratorError("fit_failed", f"Fitting failed: {error}") from error
        progress("sampling evaluation rows", 60)
        np.random.seed(seed + 1)
        evaluation = model.sample(num_rows=rows)
    if isinstance(evaluation, dict):
        evaluation = evaluation[TABLE]
    if synthesizer in NEURAL:
        losses = loss_table(model) or losses
    model.save(str(model_path))
    return FittedSynthesizer(path=model_path, evaluation=evaluation, loss_values=losses)


def loss_table(model: Any) -> list[dict[str, float]]:
    """Per-epoch mean losses from SDV's ``get_loss_values`` (columns differ between CTGAN and TVAE)."""
    try:
        table = model.get_loss_values()
    except Exception:
        return []
    if table is None or table.empty:
        return []
    renamed = table.rename(
        columns={
            "Epoch": "epoch",
            "Generator Loss": "generator",
            "Discriminator Loss": "discriminator",
            "Distriminator Loss": "discriminator",
            "Loss": "loss",
        }
    )
    keep = [c for c in ("generator", "discriminator", "loss") if c in renamed.columns]
    grouped = renamed.groupby("epoch")[keep].mean().reset_index()
    out = []
    for record in grouped.to_dict("records"):
        out.append(
            {
                key: (int(value) if key == "epoch" else float(value))
                for key, value in record.items()
                if not (isinstance(value, float) and math.isnan(value))
            }
        )
    return out
