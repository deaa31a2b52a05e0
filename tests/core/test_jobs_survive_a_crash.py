"""Killing the worker loses no job: a real Celery worker on the embedded broker is killed with SIGKILL (its whole
process group, as the kernel's OOM killer or ``kill -9`` leaves it) in the middle of a certification and in the
middle of a fit; a new worker is started, and each job finishes exactly once (one certificate, one fitted
model), by a second attempt. Beat runs the sweep as in ``make run``; the lease is shortened to 6 s.

Without the fix (kombu's filesystem broker, no leases or sweep) the certification stays "running 27 %" after
the kill, whatever the new worker does: the message left the broker when the killed worker read it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
QUEUES = "default,certify,fit,sample"


class Instance:
    """A throw-away instance (its own var dir: SQLite database, files, embedded broker) run by processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.var = folder / "var"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in ("DATABASE_URL", "CELERY_BROKER_URL", "SYNTHEX_S3_BUCKET", "CELERY_TASK_ALWAYS_EAGER")
        }
        self.env.update(
            SYNTHEX_VAR_DIR=str(self.var),
            DJANGO_SETTINGS_MODULE="marketplace.settings",
            DEBUG="0",
            SYNTHEX_JOB_LEASE_SECONDS="6",
            SYNTHEX_SWEEP_SECONDS="2",
            PYTHONUNBUFFERED="1",
        )
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, *argv: str) -> str:
        done = subprocess.run(
            [sys.executable, *argv], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip()

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marketplace", *argv],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "-Q", QUEUES, "-c", "1", "-n", f"{name}@%h", "--loglevel", "INFO")

    def query(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.var / "db.sqlite3", timeout=30) as db:
            return db.execute(sql, parameters).fetchall()

    def job(self, job_id: str) -> dict[str, Any]:
        fields = ("status", "stage", "progress", "attempts", "version_id")
        (row,) = self.query(
            f"SELECT {', '.join(fields)} FROM certification_job WHERE id = ?", job_id.replace("-", "")
        )
        return dict(zip(fields, row, strict=True))

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the worker's main process and its pool children at once."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    made = Instance(tmp_path)
    made.run("manage.py", "migrate", "--no-input", "-v0")
    made.start("beat", "beat", "--schedule", str(tmp_path / "beat-schedule"), "--loglevel", "INFO")
    yield made
    for process in made.processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_a_worker_killed_mid_certification_and_mid_fit_loses_no_job(instance: Instance) -> None:
    worker = instance.start_worker("first")
    certify = instance.run("tests/core/crash_jobs.py", "certify")

    def certifying() -> bool:
        job = instance.job(certify)
        assert job["status"] != "succeeded", "certification ended before the worker could be killed"
        return job["status"] == "running" and job["progress"] >= 20

    wait_for(certifying, 300, "certification to be under way")
    kill_group(worker)
    killed = instance.job(certify)
    assert (killed["status"], killed["attempts"]) == ("running", 1)

    worker = instance.start_worker("second")
    wait_for(lambda: instance.job(certify)["status"] in ("succeeded", "failed"), 300, "certification to end")
    job = instance.job(certify)
    assert (job["status"], job["stage"], job["progress"], job["attempts"]) == ("succeeded", "done", 100, 2)
    assert instance.query(
        "SELECT COUNT(*) FROM certification_certificate WHERE version_id = ?", job["version_id"]
    ) == [(1,)]
    assert instance.query("SELECT status FROM catalog_productversion WHERE id = ?", job["version_id"]) == [
        ("certified",)
    ]

    fit = instance.run("tests/core/crash_jobs.py", "fit")

    def fitting() -> bool:
        job = instance.job(fit)
        assert job["status"] != "succeeded", "the fit ended before the worker could be killed"
        return (
            job["status"] == "running"
            and job["stage"].startswith("epoch ")
            and not job["stage"].startswith("epoch 1/")
        )

    wait_for(fitting, 300, "fitting to be under way")
    kill_group(worker)
    assert instance.job(fit)["status"] == "running"

    instance.start_worker("third")
    wait_for(lambda: instance.job(fit)["status"] in ("succeeded", "failed"), 600, "the fit to end")
    job = instance.job(fit)
    assert (job["status"], job["stage"], job["attempts"]) == ("succeeded", "done", 2)
    generators = instance.query(
        "SELECT status, length(sha256), storage_name != '' FROM generators_generatormodel WHERE version_id = ?",
        job["version_id"],
    )
    assert generators == [("ready", 64, 1)]
    assert instance.query(
        "SELECT COUNT(*) FROM certification_certificate WHERE version_id = ?", job["version_id"]
    ) == [(1,)]

    # Every message is eventually acknowledged: none stays taken by a killed worker, none waits.
    broker = instance.var / "broker" / "broker.sqlite3"

    def drained() -> bool:
        with sqlite3.connect(broker, timeout=30) as db:
            return db.execute(
                "SELECT COUNT(*) FROM broker_message WHERE queue IN ('certify', 'fit')"
            ).fetchone() == (0,)

    wait_for(drained, 60, "the certify and fit queues to drain")
    assert "Traceback" not in instance.log("second") + instance.log("third")
