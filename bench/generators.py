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
  sandbox >= 50% of in-process).
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

from marketplace.generators import services  # noqa: E402
from marketplace.generators.sandbox import SandboxLimits, job_folder, run_in_sandbox  # noqa: E402
from marketplace.generators.schema import DeclaredSchema, check_output  # noqa: E402


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
            model = services._build_synthesizer("gaussian_copula", metadata, {}, [])
            model.fit({services.TABLE: train})
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
                    "batch_size": services.SAMPLE_BATCH_ROWS,
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
            for begin in range(0, arguments.rows, services.SAMPLE_BATCH_ROWS):
                batch = loaded.sample(num_rows=min(services.SAMPLE_BATCH_ROWS, arguments.rows - begin))
                batches.append(batch[services.TABLE] if isinstance(batch, dict) else batch)
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


if __name__ == "__main__":
    main()
