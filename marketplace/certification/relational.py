"""Certification of a relational version (issue 20): the whole set of tables through ``evaluate_relational``.

The certificate keeps the v2 sections (``quality``, ``plausibility``, ``privacy`` with
``privacy.entity_level``, ``parameters``, ``engine``) as summaries over the set, adds ``tables`` (each
table's single-table figures) and ``relational`` (referential integrity, cardinality shape similarity,
parent-child pair trends, sibling similarity, the joined-row discriminator, each beside its holdout
``reference``), and names every synthetic table's file by SHA-256 in ``subject.artifacts``. Sets are read
whole: a uniform sample of rows would cut children from their parents.
"""

from __future__ import annotations

import logging
import tempfile

from marketplace.catalog.models import FileRole
from marketplace.catalog.relational import load_sets
from marketplace.certification.models import Certificate, Job
from marketplace.certification.progress import progress_writer
from marketplace.certification.services import CertificationFailed, issue_certificate
from marketplace.core.storage import StoredFileChanged

logger = logging.getLogger(__name__)

_CORE = ("quality", "plausibility", "privacy", "parameters", "engine")
CHANGED_TABLE_MESSAGE = (
    "A stored table of this version no longer matches the SHA-256 recorded at upload; it was not used. "
    "Contact the team."
)


def run_relational_certification(job: Job) -> Certificate:
    """Evaluate the job's relational version with the engine, then sign and store its certificate."""
    from marketplace.certification.engine import EngineConfig, EngineError
    from marketplace.certification.engine.relational import evaluate_relational

    version = job.version
    progress = progress_writer(job)
    progress("loading", 0)
    with tempfile.TemporaryDirectory(prefix="synthex-certify-") as folder:
        try:
            sets = load_sets(version, folder)
        except StoredFileChanged as error:
            logger.error(
                "ALERT: stored table %s of version %s no longer matches its SHA-256", error, version.pk
            )
            raise CertificationFailed(CHANGED_TABLE_MESSAGE) from None
    if FileRole.TRAIN not in sets:
        raise CertificationFailed(
            "This version has no reference train tables: upload the real tables the synthetic set imitates "
            "(and a holdout set split by entity) to certify it."
        )
    try:
        evaluation = evaluate_relational(
            sets[FileRole.SYNTHETIC],
            sets[FileRole.TRAIN],
            sets.get(FileRole.HOLDOUT),
            version.sdv_metadata,
            rules=(version.rules or {}).get("tables") or None,
            config=EngineConfig(seed=version.pk),
            progress=progress,
        ).to_dict()
    except EngineError as error:
        raise CertificationFailed(str(error)) from error
    progress("signing", 100)
    synthetic_files = list(version.files.filter(role=FileRole.SYNTHETIC).order_by("table_name"))
    core = {key: evaluation[key] for key in _CORE} | {"charts": {}}
    return issue_certificate(
        version,
        core,
        synthetic_files,
        extra_sections={"tables": evaluation["tables"], "relational": evaluation["relational"]},
    )
