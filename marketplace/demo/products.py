"""Demo products for `make run`: providers, buyers and certified products made from real public tables.

Real rows come from Adult (shipped compressed in marketplace/datasets/, UCI, CC BY 4.0) and from datasets
bundled inside scikit-learn (nothing is downloaded). Each table is split 80/20 into train and holdout; an SDV GaussianCopula fitted on train makes
the synthetic version; the platform certifies it against both, exactly as for a provider's upload.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction

from marketplace import datasets
from marketplace.accounts.models import Membership, Organization, User
from marketplace.catalog import services as catalog
from marketplace.catalog.models import Product
from marketplace.catalog.uploads import local_upload
from marketplace.certification import submission

logger = logging.getLogger(__name__)

DEMO_USERS = ("demo-provider", "demo-buyer", "demo-auditor", "demo-staff")


def load_adult() -> pd.DataFrame:
    return datasets.load_adult()


def _sklearn(name: str, target: str, labels: Callable[[pd.Series], pd.Series] | None = None) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.rename(columns={"target": target})
    if labels is not None:
        frame[target] = labels(frame[target])
    frame.columns = [
        str(c).replace(" ", "_").replace("(", "").replace(")", "").replace("/", "_") for c in frame.columns
    ]
    return frame


def load_breast_cancer() -> pd.DataFrame:
    frame = _sklearn("breast_cancer", "diagnosis", lambda s: s.map({0: "malignant", 1: "benign"}))
    return frame[
        [c for c in frame.columns if c.startswith("mean_") or c.startswith("worst_")][:12] + ["diagnosis"]
    ]


def load_wine() -> pd.DataFrame:
    return _sklearn("wine", "cultivar", lambda s: s.map({0: "cultivar_a", 1: "cultivar_b", 2: "cultivar_c"}))


def load_iris() -> pd.DataFrame:
    return _sklearn("iris", "species", lambda s: s.map({0: "setosa", 1: "versicolor", 2: "virginica"}))


def load_diabetes() -> pd.DataFrame:
    from sklearn import datasets

    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    return frame.rename(
        columns={
            "target": "progression",
            "s1": "tc",
            "s2": "ldl",
            "s3": "hdl",
            "s4": "tch",
            "s5": "ltg",
            "s6": "glu",
        }
    )


def load_digits() -> pd.DataFrame:
    frame = _sklearn("digits", "digit", lambda s: s.astype(str))
    centre = [f"pixel_{r}_{c}" for r in range(2, 6) for c in range(2, 6)]
    return frame[centre + ["digit"]]


@dataclass(frozen=True)
class DemoProduct:
    organization: str
    title: str
    summary: str
    description: str
    domain: str
    tags: tuple[str, ...]
    load: Callable[[], pd.DataFrame]
    columns: tuple[str, ...] | None
    file_format: str
    target: str
    prices: dict[str, int]


ORGANIZATIONS = {
    "civic-data-lab": ("Civic Data Lab", "Open statistics about work, income and education, made shareable."),
    "meridian-health": ("Meridian Health Synth", "Clinical research tables without the patients in them."),
    "orchard-analytics": (
        "Orchard Analytics",
        "Laboratory and measurement data for teaching and benchmarks.",
    ),
}

PRODUCTS = (
    DemoProduct(
        "civic-data-lab",
        "US Census Income (Adult), synthetic",
        "32k synthetic adults: work, education, family and income class, from the 1994 US census extract.",
        "The classic **Adult** table (UCI, CC BY 4.0), re-created by a Gaussian copula.\n\n- 15 columns: age, work class, education, occupation, capital gains, hours per week, income class\n- Use it to prototype income models without touching census microdata.",
        "census",
        ("census", "income", "tabular", "classification"),
        load_adult,
        None,
        "csv",
        "class",
        {"research": 0, "standard": 4900, "commercial": 19900},
    ),
    DemoProduct(
        "civic-data-lab",
        "Capital gains and income",
        "Investment income, losses and income class for working adults.",
        "A finance-oriented slice of the Adult census table: capital gains and losses, hours worked and income class.",
        "finance",
        ("finance", "capital-gains", "income"),
        load_adult,
        ("age", "workclass", "capital-gain", "capital-loss", "hours-per-week", "class"),
        "parquet",
        "class",
        {"standard": 2900, "commercial": 9900},
    ),
    DemoProduct(
        "civic-data-lab",
        "Education and earnings",
        "Schooling, sex, age and income class: a teaching table for fairness audits.",
        "Education level and years of schooling against income class, with age and sex for fairness analyses.",
        "education",
        ("education", "fairness", "income"),
        load_adult,
        ("age", "education", "education-num", "sex", "race", "class"),
        "jsonl",
        "class",
        {"research": 0, "standard": 1900},
    ),
    DemoProduct(
        "civic-data-lab",
        "Hours worked by occupation",
        "Weekly hours by occupation, marital status and relationship.",
        "How long people work, by occupation and household situation.",
        "other",
        ("labor", "occupation", "hours"),
        load_adult,
        ("age", "occupation", "marital-status", "relationship", "hours-per-week"),
        "csv",
        "",
        {"standard": 1500},
    ),
    DemoProduct(
        "meridian-health",
        "Breast cancer diagnostics (Wisconsin)",
        "Cell-nucleus measurements from fine-needle aspirates with the diagnosis.",
        "Mean and worst-case measurements of cell nuclei (radius, texture, perimeter, area…) with the benign/malignant diagnosis.",
        "healthcare",
        ("oncology", "diagnostics", "classification"),
        load_breast_cancer,
        None,
        "csv",
        "diagnosis",
        {"research": 0, "standard": 9900, "commercial": 49900},
    ),
    DemoProduct(
        "meridian-health",
        "Diabetes progression cohort",
        "Age, sex, BMI, blood pressure and six blood serum measures with one-year disease progression.",
        "A regression table: baseline variables of diabetes patients and a quantitative measure of progression a year later.",
        "healthcare",
        ("diabetes", "regression", "clinical"),
        load_diabetes,
        None,
        "parquet",
        "progression",
        {"research": 500, "standard": 7900},
    ),
    DemoProduct(
        "orchard-analytics",
        "Wine chemistry and cultivars",
        "Thirteen chemical measurements of Italian wines from three cultivars.",
        "Alcohol, malic acid, ash, phenols, flavanoids, colour intensity, proline and more.",
        "food",
        ("wine", "chemistry", "classification"),
        load_wine,
        None,
        "jsonl",
        "cultivar",
        {"research": 0, "standard": 990},
    ),
    DemoProduct(
        "orchard-analytics",
        "Iris flower measurements",
        "Sepal and petal sizes of three iris species.",
        "Fisher's iris measurements: a small, friendly table for teaching classification.",
        "science",
        ("botany", "teaching"),
        load_iris,
        None,
        "csv",
        "species",
        {"research": 0, "standard": 500},
    ),
    DemoProduct(
        "orchard-analytics",
        "Handwritten digits (centre pixels)",
        "16 centre pixels of 8×8 handwritten digits with their label.",
        "Grey levels (0–16) of the central 4×4 pixels of scanned handwritten digits.",
        "vision",
        ("digits", "images", "ocr"),
        load_digits,
        None,
        "parquet",
        "digit",
        {"research": 0, "standard": 1200, "commercial": 5900},
    ),
)


def _write(frame: pd.DataFrame, path: Path, file_format: str) -> Path:
    if file_format == "csv":
        frame.to_csv(path, index=False)
    elif file_format == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, date_format="iso")
    return path


def synthesize(train: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Fit an SDV GaussianCopula on ``train`` and sample ``rows`` rows (SDV 2.0 API)."""
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metadata = Metadata.detect_from_dataframes({"t": train})
        synthesizer = GaussianCopulaSynthesizer(metadata, enforce_min_max_values=True)
        np.random.seed(seed)
        synthesizer.fit({"t": train})
        return synthesizer.sample(num_rows=rows)["t"]


def ensure_users() -> dict[str, User]:
    password = settings.SYNTHEX_DEMO_PASSWORD
    users: dict[str, User] = {}
    for username in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@synthex.local"}
        )
        if created:
            user.set_password(password)
            user.is_auditor = username == "demo-auditor"
            user.is_staff = user.is_superuser = username == "demo-staff"
            user.save()
        users[username] = user
    for slug, (name, description) in ORGANIZATIONS.items():
        organization, _ = Organization.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "is_provider": True}
        )
        Membership.objects.get_or_create(
            user=users["demo-provider"], organization=organization, defaults={"role": Membership.Role.OWNER}
        )
    return users


def seed(*, certify: bool = True, log: Callable[[str], None] = print) -> list[Product]:
    """Create the demo users, organizations and products (idempotent: existing products are kept)."""
    users = ensure_users()
    provider = users["demo-provider"]
    made: list[Product] = []
    cache: dict[Callable[[], pd.DataFrame], pd.DataFrame] = {}
    for index, spec in enumerate(PRODUCTS):
        existing = Product.objects.filter(title=spec.title).first()
        if existing is not None and existing.versions.exists():
            made.append(existing)
            continue
        frame = cache.setdefault(spec.load, spec.load())
        if spec.columns:
            frame = frame[list(spec.columns)]
        frame = frame.reset_index(drop=True)
        shuffled = frame.sample(frac=1.0, random_state=index)
        cut = int(len(shuffled) * 0.8)
        train, holdout = (
            shuffled.iloc[:cut].reset_index(drop=True),
            shuffled.iloc[cut:].reset_index(drop=True),
        )
        log(f"  {spec.title}: fitting a Gaussian copula on {len(train):,} rows…")
        synthetic = synthesize(train, rows=len(train), seed=index)
        with tempfile.TemporaryDirectory(prefix="synthex-demo-") as folder:
            base = spec.title.lower().split(" (")[0].replace(" ", "_").replace(",", "")
            synthetic_path = _write(synthetic, Path(folder) / f"{base}.{spec.file_format}", spec.file_format)
            train_path = _write(train, Path(folder) / "train.csv", "csv")
            holdout_path = _write(holdout, Path(folder) / "holdout.csv", "csv")
            product = existing or catalog.create_product(
                user=provider,
                organization=Organization.objects.get(slug=spec.organization),
                title=spec.title,
                summary=spec.summary,
                description_md=spec.description,
                domain=spec.domain,
                tags=spec.tags,
                licenses=[catalog.LicensePrice(code, price, "USD") for code, price in spec.prices.items()],
            )
            version = catalog.create_version(
                product,
                user=provider,
                synthetic=[local_upload(synthetic_path)],
                train=local_upload(train_path),
                holdout=local_upload(holdout_path),
                target_column=spec.target,
                changelog="First release.",
            )
        with transaction.atomic():
            submission.submit_version(version, user=provider)
        if certify:
            from marketplace.certification.tasks import certify_version_task

            job = version.jobs.get()
            log(f"  {spec.title}: certifying…")
            certify_version_task.apply(args=[str(job.pk)])
            job.refresh_from_db()
            if job.error:
                log(f"  {spec.title}: certification failed: {job.error}")
        made.append(product)
    from marketplace.demo.relational import seed_relational_product
    from marketplace.generators.demo import seed_dp_generator

    made.append(seed_dp_generator(provider, certify=certify, log=log))
    made.append(seed_relational_product(provider, certify=certify, log=log))
    return made
