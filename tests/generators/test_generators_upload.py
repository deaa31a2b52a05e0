"""An honest synthesizer trained elsewhere is loaded only in the sandbox, scanned, sampled and certified."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from marketplace.catalog.models import FileRole
from marketplace.certification.models import Certificate, Job
from marketplace.generators.models import GeneratorModel


@pytest.mark.slow
def test_an_honest_uploaded_synthesizer_is_scanned_sampled_and_certified(
    upload_generator: Callable[..., Any], fitted_model_bytes: bytes
) -> None:
    import hashlib

    generator = upload_generator(fitted_model_bytes, row_quotas={"standard": 250_000})
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert (job.status, job.error) == ("succeeded", "")
    assert generator.status == GeneratorModel.Status.READY
    assert generator.sha256 == hashlib.sha256(fitted_model_bytes).hexdigest()
    assert generator.scan["matched_rows"] == 0
    assert generator.scan["objects"] > 100
    assert generator.row_quotas == {"standard": 250_000}
    sample = generator.version.files.get(role=FileRole.SYNTHETIC)
    artifacts = Certificate.objects.get(version=generator.version).document["subject"]["artifacts"]
    assert artifacts == [
        {"name": "evaluation_sample", "sha256": sample.sha256, "rows": 320, "columns": 6},
        {"name": "generator.uploaded", "sha256": generator.sha256, "rows": 0, "columns": 6},
    ]
