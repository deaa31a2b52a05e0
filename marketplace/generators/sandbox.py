"""The one door to the sandbox: every uploaded (or stored) generator file is loaded only through here.

``run_in_sandbox`` starts ``runner.py`` under bubblewrap with a user namespace (uid/gid 65534, no
capabilities), every namespace unshared (no network, not even loopback; no view of host processes), the
root filesystem read-only, the places that hold secrets (the project's folder and its parent, the var folder,
``/root``, ``/home``, ``/var``, ``/srv``, shadow files) hidden behind empty tmpfs or ``/dev/null``, a fresh
``/tmp``, and one writable bind: the job folder. ``prlimit`` caps CPU seconds, address space, file size and
open files; a pids cgroup (v1) caps the number of processes and threads and a memory cgroup caps resident
memory when those hierarchies are writable (if not, ``SandboxOutcome.notes`` says which limit is missing and
a warning is logged). A wall-clock timeout kills the whole process group and then everything left in the
cgroups. The request/response protocol is documented in ``runner.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketplace.generators.runner import PROTOCOL

logger = logging.getLogger(__name__)

RUNNER = Path(__file__).resolve().with_name("runner.py")
CGROUP_ROOT = Path("/sys/fs/cgroup")
HIDDEN_DIRECTORIES = ("/root", "/home", "/var", "/srv", "/mnt", "/media")
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
LOG_TAIL_CHARS = 2000


class SandboxRefused(Exception):
    """The sandboxed model failed or broke a rule; ``message`` is shown to the provider or buyer as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox run. Seconds are wall-clock (``wall_seconds``) or CPU (``cpu_seconds``)."""

    wall_seconds: float = 900.0
    cpu_seconds: int = 1800
    address_space_bytes: int = 8 * 1024**3
    memory_bytes: int = 4 * 1024**3
    file_size_bytes: int = 4 * 1024**3
    open_files: int = 256
    processes: int = 64
    threads: int = 1


@dataclass(frozen=True)
class SandboxOutcome:
    """A successful run: the runner's response, the job folder it wrote into, and how it was confined."""

    response: dict[str, Any]
    job_dir: Path
    seconds: float
    notes: tuple[str, ...] = field(default=())


def bubblewrap_path() -> str | None:
    return shutil.which("bwrap")


@contextmanager
def job_folder() -> Iterator[Path]:
    """A fresh private folder for one sandbox run, removed afterwards whatever happened."""
    path = Path(tempfile.mkdtemp(prefix="synthex-sandbox-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _hidden_directories() -> list[str]:
    from django.conf import settings

    project = Path(settings.BASE_DIR).resolve()
    candidates = [*HIDDEN_DIRECTORIES, str(project.parent), str(Path(settings.VAR_DIR).resolve())]
    hidden: list[str] = []
    for path in candidates:
        if os.path.isdir(path) and path != "/" and path not in hidden:
            hidden.append(path)
    return hidden


def _python_paths() -> list[str]:
    """The interpreter, the virtualenv and the standard library: brought back read-only over hidden folders."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    executable = os.path.realpath(sys.executable)
    paths.add(os.path.dirname(executable))
    return sorted(paths)


def _bwrap_command(job_dir: Path, limits: SandboxLimits) -> list[str]:
    command = [
        bubblewrap_path() or "bwrap",
        "--unshare-user",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--cap-drop",
        "ALL",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    hidden = _hidden_directories()
    for path in hidden:
        command += ["--tmpfs", path]
    for path in HIDDEN_FILES:
        if os.path.exists(path):
            command += ["--ro-bind", "/dev/null", path]
    for path in _python_paths():
        command += ["--ro-bind", path, path]
    command += ["--ro-bind", str(RUNNER), str(RUNNER)]
    command += ["--bind", str(job_dir), str(job_dir)]
    for path in ["/tmp", *hidden]:
        command += ["--remount-ro", path]
    command += ["--chdir", str(job_dir), "--clearenv", "--setenv", "TMPDIR", str(job_dir)]
    threads = str(limits.threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        command += ["--setenv", name, threads]
    command += ["--setenv", "HOME", str(job_dir), "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    command += [sys.executable, "-I", str(RUNNER), str(job_dir)]
    return command


def _prlimit_command(limits: SandboxLimits) -> list[str]:
    return [
        shutil.which("prlimit") or "prlimit",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 2}",
        f"--as={limits.address_space_bytes}",
        f"--fsize={limits.file_size_bytes}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]


@dataclass
class _Cgroups:
    folders: list[Path]
    notes: list[str]

    @classmethod
    def create(cls, limits: SandboxLimits) -> _Cgroups:
        name = f"synthex-sandbox-{uuid.uuid4().hex[:12]}"
        folders: list[Path] = []
        notes: list[str] = []
        wanted = {
            "pids": {"pids.max": str(limits.processes)},
            "memory": {
                "memory.limit_in_bytes": str(limits.memory_bytes),
                "memory.memsw.limit_in_bytes": str(limits.memory_bytes),
            },
        }
        for controller, values in wanted.items():
            folder = CGROUP_ROOT / controller / name
            try:
                folder.mkdir()
            except OSError as error:
                notes.append(f"{controller} cgroup unavailable ({error.strerror}): not limited by cgroup")
                continue
            folders.append(folder)
            for key, value in values.items():
                try:
                    (folder / key).write_text(value)
                except OSError as error:
                    if key == "memory.limit_in_bytes" or key == "pids.max":
                        notes.append(f"{controller} cgroup: cannot set {key} ({error.strerror})")
        for note in notes:
            logger.warning("sandbox: %s", note)
        return cls(folders, notes)

    def enter_script(self) -> str:
        writes = [f"echo $$ > {shlex.quote(str(folder / 'cgroup.procs'))}" for folder in self.folders]
        return " && ".join([*writes, 'exec "$@"'])

    def was_out_of_memory(self) -> bool:
        for folder in self.folders:
            control = folder / "memory.oom_control"
            if control.exists():
                fields = control.read_text().split()
                counts = dict(zip(fields[::2], fields[1::2], strict=False))
                if counts.get("oom_kill", "0") != "0" or counts.get("under_oom", "0") != "0":
                    return True
            failcnt = folder / "memory.failcnt"
            if failcnt.exists() and failcnt.read_text().strip() not in ("", "0"):
                return True
        return False

    def hit_process_limit(self) -> bool:
        for folder in self.folders:
            events = folder / "pids.events"
            if events.exists() and events.read_text().split()[-1:] not in (["0"], []):
                return True
        return False

    def destroy(self) -> None:
        """Kill whatever is still inside, then remove the folders."""
        for folder in self.folders:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
            try:
                folder.rmdir()
            except OSError as error:
                logger.error("sandbox: could not remove cgroup %s: %s", folder, error)


def run_in_sandbox(
    job_dir: Path, request: Mapping[str, Any], limits: SandboxLimits | None = None
) -> SandboxOutcome:
    """Run the runner on ``request`` inside the sandbox; return its response when it succeeded.

    ``job_dir`` must hold the files the request names (e.g. the model). Raises ``SandboxRefused`` with a
    clear message when the model failed, broke a limit (time, CPU, memory, processes, file size), or answered
    outside the protocol; the host is left as it was in every case (only ``job_dir`` can have changed).
    """
    limits = limits or SandboxLimits()
    if bubblewrap_path() is None:
        raise SandboxRefused(
            "sandbox_unavailable", "The sandbox (bubblewrap) is not installed on this worker."
        )
    (job_dir / "request.json").write_text(json.dumps({"protocol": PROTOCOL, **request}))
    response_path = job_dir / "response.json"
    response_path.unlink(missing_ok=True)
    cgroups = _Cgroups.create(limits)
    command = [
        "/bin/sh",
        "-c",
        cgroups.enter_script(),
        "sandbox",
        *_prlimit_command(limits),
        *_bwrap_command(job_dir, limits),
    ]
    log_path = job_dir / "runner.log"
    started = time.perf_counter()
    timed_out = False
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/bin:/bin"},
            )
            try:
                returncode = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
        out_of_memory = cgroups.was_out_of_memory()
        too_many_processes = cgroups.hit_process_limit()
    finally:
        cgroups.destroy()
    seconds = time.perf_counter() - started
    log_tail = _tail(log_path)
    response = _read_response(response_path)
    if timed_out:
        raise SandboxRefused(
            "timeout", f"The model did not finish within {limits.wall_seconds:g} seconds and was stopped."
        )
    if response is not None and response.get("ok") is True and returncode == 0:
        return SandboxOutcome(response=response, job_dir=job_dir, seconds=seconds, notes=tuple(cgroups.notes))
    logger.info("sandbox run failed (exit %s): %s", returncode, log_tail)
    if out_of_memory:
        raise SandboxRefused(
            "memory_limit", f"The model used more than {limits.memory_bytes // 1024**2} MiB of memory."
        )
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL) and (
        response is None
    ):
        raise SandboxRefused(
            "cpu_limit", f"The model used more than {limits.cpu_seconds} CPU seconds and was stopped."
        )
    if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        raise SandboxRefused(
            "file_size_limit", f"The model wrote more than {limits.file_size_bytes // 1024**2} MiB."
        )
    if response is not None and response.get("ok") is False and isinstance(response.get("error"), dict):
        error = response["error"]
        code = str(error.get("code", "model_error"))[:40]
        message = str(error.get("message", ""))[:600]
        if too_many_processes:
            code, message = "process_limit", f"The model started too many processes ({message})."
        raise SandboxRefused(code, f"The model failed inside the sandbox: {message}")
    if too_many_processes:
        raise SandboxRefused(
            "process_limit", "The model started more processes than allowed and was stopped."
        )
    raise SandboxRefused(
        "no_response", f"The sandboxed model exited (status {returncode}) without a valid response."
    )


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_CHARS))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _read_response(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > 1024 * 1024:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
        return None
    return data
