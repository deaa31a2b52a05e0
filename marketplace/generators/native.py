"""Generators on Synthex's own engines (``dp.py``): the DP MST and the Chow-Liu tree.

Guarantees:
- A DP fit is refused at the request (nothing stored, nothing spent) unless 0 < ε ≤ ``max_epsilon()``,
  0 < δ < 1/n (n the training rows) and the product's declared ε budget holds ε; the spend and its ledger
  event are written in the transaction that creates the version.
- The model is a JSON document of probabilities, never code: it is sampled in the worker, from the stored
  file checked against its SHA-256, and the rows pass the same ``schema.check_output`` as sandbox output.
- A fit attempt after a lost worker reuses the model an earlier attempt stored, so one spend releases one
  model.
"""

from __future__ import annotations

import json
import math
import secrets
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from marketplace.accounts.models import User
from marketplace.catalog.models import Product
from marketplace.catalog.uploads import HashedFile
from marketplace.generators import budget, engines, storage
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel, Synthesizer
from marketplace.generators.schema import DeclaredSchema, OutputInvalid, check_output
from marketplace.generators.services.draws import SampledFile
from marketplace.generators.services.setup import (
    check_generator_product,
    check_quotas,
    check_target,
    new_generator_version,
    read_training_rows,
    split_holdout,
    start_fitted_generator,
)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_DELTA = 1e-6
# Measured with bench/generators.py --quality on Adult (80% train, 20% holdout; see docs/generators.md).
QUALITY_COST: tuple[dict[str, str], ...] = (
    {
        "engine": "chow_liu (not DP)",
        "epsilon": "∞",
        "quality": "0.744 (B)",
        "sdmetrics": "0.971",
        "fit": "0.6 s",
    },
    {"engine": "dp_mst", "epsilon": "10", "quality": "0.761 (C)", "sdmetrics": "0.966", "fit": "2.1 s"},
    {"engine": "dp_mst", "epsilon": "3", "quality": "0.724 (C)", "sdmetrics": "0.956", "fit": "1.9 s"},
    {"engine": "dp_mst", "epsilon": "1", "quality": "0.687 (D)", "sdmetrics": "0.945", "fit": "1.1 s"},
    {"engine": "dp_mst", "epsilon": "0.3", "quality": "0.510 (D)", "sdmetrics": "0.899", "fit": "2.2 s"},
    {
        "engine": "gaussian_copula (SDV)",
        "epsilon": "∞",
        "quality": "0.350 (D)",
        "sdmetrics": "0.844",
        "fit": "66 s",
    },
)
CONDITION_BATCHES = 50
COVERED = {
    "generator": "The model file and every row drawn from it (post-processing of the DP measurements).",
    "marginals": "1-way marginals of every column and the 2-way marginals of the tree: discrete Gaussian.",
    "structure": "The tree's edges: exponential mechanism (noisy max) on each round.",
    "domain_compression": "Merging rare values: decided from the noisy 1-way marginals (post-processing).",
    "holdout_split": "A uniform random 20% of the rows is held out and never fitted on: ε covers the 80%.",
    "not_covered": "The certificate's own quality and privacy figures, computed from the real train and "
    "holdout rows as for every product; the training row count, published with the generator.",
}


def max_epsilon() -> float:
    """The largest ε one fit may spend (setting ``SYNTHEX_DP_MAX_EPSILON``, default 20)."""
    return float(settings.SYNTHEX_DP_MAX_EPSILON)


def _number(value: Any, name: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise GeneratorError(f"bad_{name}", f"{name} must be a number.") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GeneratorError(f"bad_{name}", f"{name} must be a finite number.")
    return float(value)


def check_privacy(
    synthesizer: str, epsilon: Any, delta: Any, training_rows: int
) -> tuple[float, float] | None:
    """The (ε, δ) of a fit, checked: DP engines need 0 < ε ≤ max and 0 < δ < 1/n (δ defaults to the smaller
    of 1e-6 and 1/(10 n)); the Chow-Liu tree refuses ε and δ (it is not DP). None for non-DP engines."""
    from marketplace.generators import dp  # numpy and OpenDP load on first use, not in the web process

    eps, dlt = _number(epsilon, "epsilon"), _number(delta, "delta")
    if not engines.engine_of(synthesizer).is_differentially_private:
        if eps is not None or dlt is not None:
            raise GeneratorError(
                "not_differentially_private",
                f"{engines.engine_of(synthesizer).name} is not differentially private; pick dp_mst to set ε.",
            )
        return None
    if eps is None:
        raise GeneratorError("bad_epsilon", "A differentially private fit needs epsilon (ε > 0).")
    if not 0 < eps <= max_epsilon():
        raise GeneratorError("bad_epsilon", f"ε must lie in (0, {max_epsilon():g}]; got {eps:g}.")
    if eps < dp.MIN_EPSILON:
        raise GeneratorError("bad_epsilon", f"ε below {dp.MIN_EPSILON:g} leaves nothing but noise.")
    if dlt is None:
        dlt = min(DEFAULT_DELTA, 0.1 / max(training_rows, 1))
    if not 0 < dlt < 1 / max(training_rows, 1):
        raise GeneratorError(
            "bad_delta", f"δ must lie in (0, 1/n) with n = {training_rows} training rows; got {dlt:g}."
        )
    return eps, dlt


def create_native_generator(
    product: Product,
    *,
    user: User,
    data: HashedFile,
    synthesizer: str,
    epsilon: Any = None,
    delta: Any = None,
    epsilon_total: Any = None,
    public_domain: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    target_column: str = "",
    row_quotas: Mapping[str, Any] | None = None,
) -> GeneratorModel:
    """Like ``setup.create_fitted_generator`` for the tree engines: hold out 20% (seed recorded), store
    train and holdout privately, spend ε (DP) and queue the fit. ``public_domain`` maps columns to their
    public categories (a list) or range (``{"min", "max"}``); other columns' domains are read from the rows,
    which the provider declares public by fitting. ``epsilon_total`` declares the product's budget first.
    All-or-nothing."""
    from marketplace.generators import dp  # numpy and OpenDP load on first use, not in the web process

    check_generator_product(product, user)
    if not engines.is_native(synthesizer):
        raise GeneratorError("bad_synthesizer", "Pick chow_liu or dp_mst for this engine.")
    engines.ensure_hosted(synthesizer)
    quotas = check_quotas(row_quotas)
    frame, sdv_metadata = read_training_rows(data, metadata)
    check_target(target_column, frame)
    if public_domain is not None and not isinstance(public_domain, Mapping):
        raise GeneratorError("bad_domain", "public_domain must map columns to categories or {min, max}.")
    try:
        domains = dp.build_domains(frame, sdv_metadata, public_domain)
    except dp.TreeModelError as error:
        raise GeneratorError(error.code, error.message) from None
    seed, train, holdout = split_holdout(frame)
    privacy = check_privacy(synthesizer, epsilon, delta, len(train))
    parameters: dict[str, Any] = {
        "domain_sources": {domain.name: domain.source for domain in domains},
        "public_domain": dict(public_domain or {}),
    }
    if privacy is not None:
        parameters.update(epsilon=privacy[0], delta=privacy[1])
    with tempfile.TemporaryDirectory(prefix="synthex-fit-") as folder, transaction.atomic():
        if epsilon_total is not None:
            budget.declare_budget(product, _number(epsilon_total, "epsilon_total"))
        version = new_generator_version(product, user, target_column=target_column, sdv_metadata=sdv_metadata)
        if privacy is not None:
            budget.spend(version, epsilon=privacy[0], delta=privacy[1], mechanism="mst")
        return start_fitted_generator(
            version,
            Path(folder),
            (data.name or "data")[:255],
            (seed, train, holdout),
            synthesizer=synthesizer,
            sdv_metadata=sdv_metadata,
            parameters=parameters,
            row_quotas=quotas,
        )


def fit_generator(
    generator: GeneratorModel,
    train: pd.DataFrame,
    folder: Path,
    rows: int,
    progress: Callable[[str, int], None],
) -> pd.DataFrame:
    """Fit the tree model on ``train`` (or reuse the one an earlier attempt stored), store it privately as
    JSON named by its SHA-256, and return an evaluation sample of ``rows`` rows."""
    from marketplace.generators import dp  # numpy and OpenDP load on first use, not in the web process

    if generator.storage_name:
        model = load_model(generator, folder)
    else:
        progress("fitting", 5)
        parameters = generator.parameters
        columns = list(generator.sdv_metadata.get("columns", {})) or list(train.columns)
        try:
            model, accounting = dp.fit(
                train[columns],
                generator.sdv_metadata,
                engine=engines.engine_of(generator.synthesizer).id,
                epsilon=parameters.get("epsilon"),
                delta=parameters.get("delta"),
                public_domain=parameters.get("public_domain") or None,
                progress=lambda stage: progress(stage, 30),
            )
        except dp.TreeModelError as error:
            raise GeneratorError(error.code, f"Fitting failed: {error.message}") from error
        path = folder / "model.json"
        path.write_text(json.dumps(model, separators=(",", ":")), encoding="utf-8")
        sha = storage.sha256_file(path)
        name = storage.save_once(
            "reference", storage.model_name(generator.version.product.organization_id, sha, "json"), path
        )
        if accounting is not None:
            parameters = {
                **parameters,
                "accounting": {
                    "rho": accounting.rho_total,
                    "epsilon": accounting.epsilon,
                    "measurements": len(accounting.steps),
                    "library": f"opendp {dp.opendp_version()}",
                },
            }
        GeneratorModel.objects.filter(pk=generator.pk).update(
            storage_name=name, sha256=sha, size_bytes=path.stat().st_size, parameters=parameters
        )
        generator.refresh_from_db()
    progress("sampling evaluation rows", 60)
    return dp.sample(model, rows, (generator.holdout_seed or 0) + 1)


def load_model(generator: GeneratorModel, folder: Path) -> dict[str, Any]:
    """The stored JSON model, checked against its SHA-256."""
    path = storage.fetch(
        "reference", generator.storage_name, folder / f"model-{secrets.token_hex(4)}.json", generator.sha256
    )
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def draw(
    generator: GeneratorModel, *, rows: int, seed: int, conditions: Mapping[str, Any] | None, folder: Path
) -> SampledFile:
    """Sample ``rows`` rows into ``folder`` as Parquet (same seed, same file); conditions by rejection:
    batches are drawn until enough rows match, else ``impossible_conditions``."""
    import pandas as pd

    from marketplace.generators import dp  # numpy and OpenDP load on first use, not in the web process

    schema = DeclaredSchema.from_sdv_metadata(generator.sdv_metadata)
    with tempfile.TemporaryDirectory(prefix="synthex-tree-") as scratch:
        model = load_model(generator, Path(scratch))
    if conditions:
        kept: list[pd.DataFrame] = []
        found = 0
        for batch in range(CONDITION_BATCHES):
            frame = dp.sample(model, max(rows, 10_000), seed + batch)
            mask = pd.Series(True, index=frame.index)
            for name, value in conditions.items():
                mask &= frame[name].astype(str) == str(value)
            kept.append(frame[mask])
            found += int(mask.sum())
            if found >= rows:
                break
        if found < rows:
            raise GeneratorError(
                "impossible_conditions", "The model makes too few rows that meet these conditions."
            )
        frame = pd.concat(kept, ignore_index=True).head(rows)
    else:
        frame = dp.sample(model, rows, seed)
    made = folder / f"made-{secrets.token_hex(6)}.parquet"
    frame.reset_index(drop=True).to_parquet(made, index=False)
    target = folder / f"sample-{secrets.token_hex(6)}.parquet"
    try:
        with open(made, "rb") as output:
            check_output(output, schema, rows)
            output.seek(0)
            sha, size = storage.copy_hashed(output, target)
    except OutputInvalid as error:
        raise GeneratorError(error.code, error.message) from None
    finally:
        made.unlink(missing_ok=True)
    return SampledFile(path=target, rows=rows, sha256=sha, size_bytes=size)


def differential_privacy(generator: GeneratorModel) -> dict[str, Any] | None:
    """The certificate's ``privacy.differential_privacy`` section of a DP generator (None otherwise)."""
    from marketplace.generators import dp  # numpy and OpenDP load on first use, not in the web process

    if generator.synthesizer != Synthesizer.DP_MST:
        return None
    parameters = generator.parameters
    accounting = parameters.get("accounting", {})
    sources = parameters.get("domain_sources", {})
    return {
        "mechanism": dp.MECHANISM,
        "epsilon": parameters["epsilon"],
        "delta": parameters["delta"],
        "epsilon_composed": accounting.get("epsilon"),
        "rho": accounting.get("rho"),
        "accountant": dp.ACCOUNTANT,
        "neighbouring": dp.NEIGHBOURS,
        "library": accounting.get("library") or f"opendp {dp.opendp_version()}",
        "engine": engines.SYNTHEX_MST,
        "covered": {
            **COVERED,
            "domain": {
                "private": False,
                "statement": "Category lists and numeric bounds are not measured privately: they are public "
                "by the provider's declaration (sent explicitly, or read from the rows with the provider's "
                "declaration that they are public).",
                "provider_sent": sorted(name for name, source in sources.items() if source == "provider"),
                "read_from_rows_declared_public": sorted(
                    name for name, source in sources.items() if source == "data"
                ),
            },
        },
    }


def add_certificate_sections(generator: GeneratorModel, evaluation: dict[str, Any]) -> None:
    """Add the DP statement (``privacy.differential_privacy``) and the engine with its licence
    (``parameters.generator``) to an evaluation before it is signed."""
    section = differential_privacy(generator)
    if section is not None:
        evaluation["privacy"]["differential_privacy"] = section
    engine = engines.engine_of(generator.synthesizer)
    evaluation["parameters"]["generator"] = {
        "synthesizer": generator.synthesizer,
        "engine": engine.id,
        "engine_licence": engine.licence,
    }


def describe(generator: GeneratorModel) -> dict[str, Any]:
    """Engine, licence, DP parameters and the product's ε budget, for the API and the page."""
    parameters = generator.parameters
    dp_fields = (
        {"epsilon": parameters.get("epsilon"), "delta": parameters.get("delta"), "mechanism": "mst"}
        if generator.synthesizer == Synthesizer.DP_MST
        else None
    )
    return {
        **engines.describe_engine(generator),
        "differential_privacy": dp_fields,
        **budget.budget_of(generator.version.product),
    }
