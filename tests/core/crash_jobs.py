"""Queue one job on a throw-away instance, for the crash test (run in a subprocess with its environment).

python tests/core/crash_jobs.py certify   # a dataset version sent to certification; prints the job id
python tests/core/crash_jobs.py fit       # a CTGAN generator sent to be fitted; prints the job id
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
django.setup()

from django.db import transaction  # noqa: E402

from marketplace.accounts.models import User  # noqa: E402
from marketplace.accounts.services import create_organization  # noqa: E402
from marketplace.catalog import services as catalog  # noqa: E402
from marketplace.catalog.uploads import local_upload  # noqa: E402
from marketplace.certification import submission  # noqa: E402
from marketplace.certification.models import Job  # noqa: E402
from marketplace.datasets import load_adult  # noqa: E402
from marketplace.generators.services import setup as generators  # noqa: E402

COLUMNS = ["age", "workclass", "education-num", "hours-per-week", "sex", "class"]


def provider() -> User:
    user = User.objects.filter(username="crash-provider").first()
    if user is None:
        user = User.objects.create_user(username="crash-provider", password="correct-horse-battery")
        create_organization(owner=user, name="Crash Provider", is_provider=True)
    return user


def product(user: User, kind: str) -> catalog.Product:
    return catalog.create_product(
        user=user,
        organization=user.organizations.get(),
        title=f"Crash {kind} {Job.objects.count() + 1}",
        summary="A table for the crash test.",
        domain="census",
        kind=kind,
        licenses=[catalog.LicensePrice("standard", 2500, "USD")],
    )


def queue_certification(folder: Path) -> Job:
    user = provider()
    frame = load_adult(nrows=15000)[COLUMNS].dropna().head(12000).reset_index(drop=True)
    train, holdout = frame.iloc[:6000], frame.iloc[6000:]
    synthetic = train.sample(frac=1.0, random_state=1).reset_index(drop=True)
    paths = {}
    for role, table in {"synthetic": synthetic, "train": train, "holdout": holdout}.items():
        paths[role] = folder / f"{role}.csv"
        table.to_csv(paths[role], index=False)
    version = catalog.create_version(
        product(user, "dataset"),
        user=user,
        synthetic=[local_upload(paths["synthetic"], name="people.csv")],
        train=local_upload(paths["train"]),
        holdout=local_upload(paths["holdout"]),
        target_column="class",
    )
    with transaction.atomic():
        submission.submit_version(version, user=user)
    return Job.objects.get(version=version, kind=Job.Kind.CERTIFY)


def queue_fit(folder: Path) -> Job:
    user = provider()
    path = folder / "people.csv"
    load_adult(nrows=1200)[COLUMNS].dropna().head(400).to_csv(path, index=False)
    with transaction.atomic():
        generator = generators.create_fitted_generator(
            product(user, "generator"),
            user=user,
            data=local_upload(path, name="people.csv"),
            synthesizer="ctgan",
            epochs=20,
        )
    return Job.objects.get(version=generator.version, kind=Job.Kind.FIT)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as name:
        job = queue_certification(Path(name)) if sys.argv[1] == "certify" else queue_fit(Path(name))
    print(job.pk)
