"""A certification job's progress as the page and the API read it (``Job.stage``, ``Job.progress``)."""

from __future__ import annotations

from collections.abc import Callable

from marketplace.certification.models import Job

# Progress is written when the stage changes or it moved this many percent (fewer UPDATEs of the job row).
PROGRESS_STEP = 2


def progress_writer(job: Job, *, low: int = 5, high: int = 95) -> Callable[[str, int], None]:
    """Map a (stage, percent) onto the job's ``low``–``high``% range (the engine's onto 5–95 by default),
    writing when the stage changes or the job's figure moved ``PROGRESS_STEP`` percent."""
    last_progress = [-100]
    last_stage = [""]

    def write(stage: str, percent: int) -> None:
        overall = low + int(max(0, min(100, percent)) * ((high - low) / 100))
        if stage != last_stage[0] or overall - last_progress[0] >= PROGRESS_STEP:
            Job.objects.filter(pk=job.pk).update(stage=stage[:40], progress=overall)
            last_progress[0], last_stage[0] = overall, stage

    return write
