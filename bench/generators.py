"""Benchmark of generator products: fitting on Adult, sandbox start, and 1M-row sampling in vs out of the sandbox.

    .venv/bin/python bench/generators.py [--runs 3] [--rows 1000000] [--starts 10]

Prints medians (the machine is shared: medians and ratios, not single runs):
- fit: GaussianCopula on the 80% train split of Adult (26,048 rows x 15) through the platform's own
  synthesizer builder, wall seconds (target <= 30 s on 2 cores);
- sandbox start: a ``ping`` round trip through bubblewrap + prlimit + cgroups (target < 2 s), and the extra
  time to import SDV and unpickle the model inside the sandbox;
- sampling: ``--rows`` rows from the same saved model in-process (``model.sample`` in the sandbox's batches
  of 100,000 rows, concatenated) and through the sandbox
  (start, load, sample, Parquet write, schema check on the host), rows per second and their ratio (target
  sandbox >= 50% of in-process);
- engines: fit and sample times of Synthex's own engines (Chow-Liu tree; MST at ε = 1 and 10, DP) on the same
  train split, sampled as the worker does (JSON model, Parquet, schema check), beside GaussianCopula; with
  ``--quality`` each engine's evaluation sample (as many rows as train) is certified against the 20% holdout:
  quality score and grade, SDMetrics score, privacy grade and verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ADULT = adult_csv()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("SYNTHEX_VAR_DIR", tempfile.mkdtemp(prefix="synthex-bench-generators-"))

import django  # noqa: E402

django.setup()

import pandas as pd  # noqa: E402

from marketplace.generators import fitting  # noqa: E402
from marketplace.generators.sandbox import SandboxLimits, job_folder, run_in_sandbox  # noqa: E402
from marketplace.generators.schema import DeclaredSchema, check_output  # noqa: E402
from marketplace.generators.services.draws import SAMPLE_BATCH_ROWS  # noqa: E402


def _quiet() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--quality", action="store_true", help="certify each engine's sample (minutes)")
    parser.add_argument("--epsilons", default="1,10", help="ε of the MST fits, comma-separated")
    arguments = parser.parse_args()

    from marketplace.catalog.ingest import profile_table

    adult = pd.read_csv(ADULT, na_values=["?"])
    train = adult.sample(frac=0.8, random_state=0)
    metadata = profile_table(ADULT, "csv").sdv_metadata
    schema = DeclaredSchema.from_sdv_metadata(metadata)

    fits: list[float] = []
    model = None
    for _ in range(arguments.runs):
        with _quiet():
            started = time.perf_counter()
            model = fitting.build_synthesizer("gaussian_copula", metadata, {}, [])
            model.fit({fitting.TABLE: train})
            fits.append(time.perf_counter() - started)
    print(
        f"fit GaussianCopula on Adult train ({len(train):,} rows x {train.shape[1]}): "
        f"median {_median(fits):.1f} s  (runs: {', '.join(f'{t:.1f}' for t in fits)}; target <= 30 s)"
    )

    folder = Path(tempfile.mkdtemp(prefix="synthex-bench-model-"))
    model_path = folder / "model.pkl"
    model.save(str(model_path))  # type: ignore[union-attr]

    pings: list[float] = []
    for _ in range(arguments.starts):
        with job_folder() as job:
            started = time.perf_counter()
            run_in_sandbox(job, {"action": "ping"})
            pings.append(time.perf_counter() - started)
    print(
        f"sandbox start (ping round trip): median {_median(pings) * 1000:.0f} ms over {len(pings)} "
        f"(max {max(pings) * 1000:.0f} ms; target < 2 s)"
    )

    inside: list[float] = []
    loads: list[float] = []
    for _ in range(arguments.runs):
        with job_folder() as job:
            (job / "model.pkl").write_bytes(model_path.read_bytes())
            started = time.perf_counter()
            outcome = run_in_sandbox(
                job,
                {
                    "action": "sample",
                    "model": "model.pkl",
                    "rows": arguments.rows,
                    "seed": 1,
                    "batch_size": SAMPLE_BATCH_ROWS,
                },
                SandboxLimits(),
            )
            check_output(job / "output.parquet", schema, arguments.rows)
            inside.append(time.perf_counter() - started)
            loads.append(outcome.response["seconds"]["load"])

    outside: list[float] = []
    for _ in range(arguments.runs):
        with _quiet():
            loaded = pickle.loads(model_path.read_bytes())
            started = time.perf_counter()
            batches = []
            for begin in range(0, arguments.rows, SAMPLE_BATCH_ROWS):
                batch = loaded.sample(num_rows=min(SAMPLE_BATCH_ROWS, arguments.rows - begin))
                batches.append(batch[fitting.TABLE] if isinstance(batch, dict) else batch)
            frame = pd.concat(batches, ignore_index=True)
            outside.append(time.perf_counter() - started)
        del frame

    print(f"import SDV + unpickle inside the sandbox: median {_median(loads):.2f} s")
    rate_inside = arguments.rows / _median(inside)
    rate_outside = arguments.rows / _median(outside)
    print(
        f"sample {arguments.rows:,} rows in-process:      median {_median(outside):.1f} s "
        f"({rate_outside:,.0f} rows/s)"
    )
    print(
        f"sample {arguments.rows:,} rows in the sandbox: median {_median(inside):.1f} s "
        f"({rate_inside:,.0f} rows/s; start + load + sample + Parquet + check)"
    )
    print(f"sandbox / in-process throughput: {rate_inside / rate_outside:.0%} (target >= 50%)")
    _engines(arguments, adult, train, metadata, schema, model, _median(fits), _median(inside))


def _engines(
    arguments: argparse.Namespace,
    adult: pd.DataFrame,
    train: pd.DataFrame,
    metadata: dict,
    schema: DeclaredSchema,
    copula: object,
    copula_fit: float,
    copula_sample: float,
) -> None:
    """Fit and sample times per engine (and, with --quality, certified figures), GaussianCopula first."""
    from marketplace.generators import dp

    holdout = adult.drop(index=train.index)
    rows: list[tuple[str, float | None, float, float, object]] = [
        ("sdv GaussianCopula", None, copula_fit, copula_sample, copula)
    ]
    for engine, epsilon in [("synthex_tree", None)] + [
        ("synthex_mst", float(value)) for value in arguments.epsilons.split(",")
    ]:
        fits: list[float] = []
        model: dict = {}
        for _ in range(arguments.runs):
            started = time.perf_counter()
            model, _ = dp.fit(
                train, metadata, engine=engine, epsilon=epsilon, delta=1e-6 if epsilon else None
            )
            fits.append(time.perf_counter() - started)
        samples = []
        for run in range(arguments.runs):
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="synthex-bench-tree-") as folder:
                path = Path(folder) / "sample.parquet"
                dp.sample(model, arguments.rows, run).to_parquet(path, index=False)
                check_output(path, schema, arguments.rows)
            samples.append(time.perf_counter() - started)
        rows.append((engine, epsilon, _median(fits), _median(samples), model))
    print(f"engines on Adult train ({len(train):,} rows), {arguments.rows:,} rows sampled:")
    for name, epsilon, fit, sample, fitted in rows:
        label = f"{name}{'' if epsilon is None else f' ε={epsilon:g}'}"
        line = (
            f"  {label:<24} fit {fit:6.2f} s   sample {sample:6.1f} s ({arguments.rows / sample:,.0f} rows/s)"
        )
        if arguments.quality:
            line += "   " + _certified(fitted, train, holdout, metadata)
        print(line, flush=True)


def _certified(model: object, train: pd.DataFrame, holdout: pd.DataFrame, metadata: dict) -> str:
    from marketplace.certification.engine import EngineConfig, evaluate
    from marketplace.generators import dp

    if isinstance(model, dict):
        synthetic = dp.sample(model, len(train), 1)
    else:
        with _quiet():
            made = model.sample(num_rows=len(train))  # type: ignore[attr-defined]
        synthetic = made[fitting.TABLE] if isinstance(made, dict) else made
    result = evaluate(
        synthetic.reset_index(drop=True),
        train.reset_index(drop=True),
        holdout.reset_index(drop=True),
        target="class",
        metadata=metadata,
        config=EngineConfig(seed=1),
    ).to_dict()
    quality, privacy = result["quality"], result["privacy"]
    return (
        f"quality {quality['score']:.3f} ({quality['grade']}), SDMetrics {quality['sdmetrics_score']:.3f}, "
        f"privacy {privacy['grade']} ({'passed' if privacy['passed'] else 'failed'})"
    )


if __name__ == "__main__":
    main()
