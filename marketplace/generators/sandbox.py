"""The one door to the sandbox: every uploaded (or stored) generator file is loaded only through here.

``run_in_sandbox`` starts ``runner.py`` under bubblewrap with a user namespace (uid/gid 65534, no
capabilities, no further user namespaces), every namespace unshared (no network, not even loopback; no view
of host processes). The sandbox sees only what the runner needs, read-only: ``/usr`` (with the merged-usr
links), the dynamic linker's cache, the interpreter, the virtualenv and ``runner.py``; not ``/etc``, not the
project, not any instance's var folder, not the host's ``/tmp``. Its job folder is a size-limited tmpfs
(``SandboxLimits.scratch_bytes``) holding read-only binds of the host's input files and read-write binds of
the host's pre-created output files (``output.parquet``, ``output.zip``, ``response.json``): a model can
change their bytes but not replace them (by a symlink, a FIFO, a hard link) nor make other files on the host's disk. A seccomp
filter refuses ``fallocate``, which reserves disk blocks that ``RLIMIT_FSIZE`` does not count.

``prlimit`` caps CPU seconds, address space, file size and open files; a pids cgroup (v1) caps the number of
processes and threads and a memory cgroup caps resident memory when those hierarchies are writable (if not,
``SandboxOutcome.notes`` says which limit is missing and a warning is logged). While the model runs the host
watches the wall clock and the bytes its output and log files hold (``SandboxLimits.disk_bytes``); past
either limit it kills the whole process group and then everything left in the cgroups. The host reads what
the model wrote only through ``open_output`` (``O_NOFOLLOW``, regular files of bounded size, never blocking).
The request/response protocol is documented in ``runner.py``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from marketplace.generators.runner import PROTOCOL

logger = logging.getLogger(__name__)

RUNNER = Path(__file__).resolve().with_name("runner.py")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSTEM_DIRECTORIES = ("/usr",)
MERGED_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache",)
OUTPUT_FILES = ("output.parquet", "output.zip", "response.json")
LOG_NAME = "runner.log"
LOG_TAIL_CHARS = 2000
MAX_RESPONSE_BYTES = 1024 * 1024
POLL_SECONDS = 0.2


class SandboxRefused(Exception):
    """The sandboxed model failed or broke a rule; ``message`` is shown to the provider or buyer as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox run. Seconds are wall-clock (``wall_seconds``) or CPU (``cpu_seconds``).

    ``file_size_bytes`` caps each file (``RLIMIT_FSIZE``); ``disk_bytes`` caps what the run leaves on the
    host's disk, its output, response and log together; ``scratch_bytes`` is the size of the job folder the
    model sees (a tmpfs: memory, not disk), where anything else it writes goes.
    """

    wall_seconds: float = 900.0
    cpu_seconds: int = 1800
    address_space_bytes: int = 8 * 1024**3
    memory_bytes: int = 4 * 1024**3
    file_size_bytes: int = 4 * 1024**3
    disk_bytes: int = 4 * 1024**3
    scratch_bytes: int = 256 * 1024**2
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


def sandbox_prefix() -> str:
    """The start of every job folder and cgroup name this process makes: its pid tells whose run a folder or
    cgroup was (an operator's sweep, and tests running side by side, count only their own)."""
    return f"synthex-sandbox-{os.getpid()}"


@contextmanager
def job_folder() -> Iterator[Path]:
    """A fresh private folder for one sandbox run, removed afterwards whatever happened."""
    path = Path(tempfile.mkdtemp(prefix=f"{sandbox_prefix()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _python_paths() -> list[str]:
    """The interpreter, the virtualenv and the standard library: the only project-side folders bound."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    executable = os.path.realpath(sys.executable)
    paths.add(os.path.dirname(executable))
    return sorted(paths)


def _system_arguments() -> list[str]:
    """Read-only binds of the system files the interpreter needs (``/usr``, the linker cache), nothing else."""
    arguments: list[str] = []
    for path in SYSTEM_DIRECTORIES:
        arguments += ["--ro-bind", path, path]
    for path in MERGED_USR_LINKS:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        if os.path.isfile(path):
            arguments += ["--ro-bind", path, path]
    for path in _python_paths():
        arguments += ["--ro-bind", path, path]
    arguments += ["--ro-bind", str(RUNNER), str(RUNNER)]
    return arguments


def _job_arguments(job_dir: Path, limits: SandboxLimits) -> list[str]:
    """The job folder as the model sees it: a tmpfs of ``scratch_bytes`` over the host's folder, with the
    host's input files bound read-only and its pre-created output files bound read-write (a bind mount cannot
    be unlinked, renamed or replaced from inside)."""
    arguments = ["--perms", "0700", "--size", str(limits.scratch_bytes), "--tmpfs", str(job_dir)]
    for entry in sorted(os.scandir(job_dir), key=lambda item: item.name):
        if entry.name in (*OUTPUT_FILES, LOG_NAME) or not entry.is_file(follow_symlinks=False):
            continue
        arguments += ["--ro-bind", entry.path, entry.path]
    for name in OUTPUT_FILES:
        arguments += ["--bind", str(job_dir / name), str(job_dir / name)]
    return arguments


def _bwrap_command(job_dir: Path, limits: SandboxLimits, seccomp_fd: int | None) -> list[str]:
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
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        # The empty /tmp first: binds below it (a checkout or virtualenv under /tmp) go on top, not under it.
        "--tmpfs",
        "/tmp",
        *_system_arguments(),
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        *_job_arguments(job_dir, limits),
        "--remount-ro",
        "/tmp",
        "--remount-ro",
        "/",
    ]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    command += ["--chdir", str(job_dir), "--clearenv", "--setenv", "TMPDIR", str(job_dir)]
    threads = str(limits.threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        command += ["--setenv", name, threads]
    command += ["--setenv", "HOME", str(job_dir), "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    command += [sys.executable, "-I", str(RUNNER), str(job_dir)]
    return command


# Seccomp: (AUDIT_ARCH_*, the fallocate syscall number) of the architectures workers run on.
_SECCOMP_ARCHITECTURES = {"x86_64": (0xC000003E, 285), "aarch64": (0xC00000B7, 47)}
_X32_SYSCALL_BIT = 0x40000000


def seccomp_program(machine: str | None = None) -> bytes | None:
    """A classic-BPF seccomp filter (as bwrap's ``--seccomp`` reads it) that makes ``fallocate`` fail with
    EOPNOTSUPP (so glibc's ``posix_fallocate`` falls back to writing, which the file size limit sees), and
    every syscall of another ABI (x32, 32-bit), whose numbers it does not check, with ENOSYS. None on an
    architecture it does not know (``run_in_sandbox`` then notes that ``fallocate`` is allowed)."""
    known = _SECCOMP_ARCHITECTURES.get(machine or platform.machine())
    if known is None:
        return None
    audit_arch, fallocate = known
    load_word, jump_equal, jump_greater_equal, ret = 0x20, 0x15, 0x35, 0x06
    allow, fail = 0x7FFF0000, 0x00050000  # SECCOMP_RET_ALLOW; SECCOMP_RET_ERRNO | errno
    program = [
        (load_word, 0, 0, 4),  # seccomp_data.arch
        (jump_equal, 1, 0, audit_arch),
        (ret, 0, 0, fail | errno.ENOSYS),
        (load_word, 0, 0, 0),  # seccomp_data.nr
        (jump_greater_equal, 3, 0, _X32_SYSCALL_BIT),
        (jump_equal, 1, 0, fallocate),
        (ret, 0, 0, allow),
        (ret, 0, 0, fail | errno.EOPNOTSUPP),
        (ret, 0, 0, fail | errno.ENOSYS),
    ]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


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
        name = f"{sandbox_prefix()}-{uuid.uuid4().hex[:12]}"
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

    ``job_dir`` must hold the files the request names (e.g. the model); the host creates the
    ``OUTPUT_FILES`` there afresh, and after the run they hold what the model wrote: read them only with
    ``open_output``. Raises ``SandboxRefused`` with a clear message when the model failed, broke a limit
    (time, CPU, memory, processes, file size, disk), or answered outside the protocol; the host is left as
    it was in every case (only those files can have changed).
    """
    limits = limits or SandboxLimits()
    if bubblewrap_path() is None:
        raise SandboxRefused(
            "sandbox_unavailable", "The sandbox (bubblewrap) is not installed on this worker."
        )
    (job_dir / "request.json").write_text(json.dumps({"protocol": PROTOCOL, **request}))
    outputs = [_fresh_file(job_dir / name) for name in (*OUTPUT_FILES, LOG_NAME)]
    program = seccomp_program()
    seccomp_fd = _memory_file(program) if program is not None else None
    notes = [] if program is not None else [f"no seccomp filter for {platform.machine()}: fallocate allowed"]
    cgroups = _Cgroups.create(limits)
    command = [
        "/bin/sh",
        "-c",
        cgroups.enter_script(),
        "sandbox",
        *_prlimit_command(limits),
        *_bwrap_command(job_dir, limits, seccomp_fd),
    ]
    started = time.perf_counter()
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=outputs[-1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin"},
            pass_fds=() if seccomp_fd is None else (seccomp_fd,),
        )
        stopped = _watch(process, outputs, limits)
        out_of_memory = cgroups.was_out_of_memory()
        too_many_processes = cgroups.hit_process_limit()
    finally:
        cgroups.destroy()
        for descriptor in [*outputs, *([] if seccomp_fd is None else [seccomp_fd])]:
            os.close(descriptor)
    seconds = time.perf_counter() - started
    log_tail = _tail(job_dir / LOG_NAME)
    if stopped == "timeout":
        raise SandboxRefused(
            "timeout", f"The model did not finish within {limits.wall_seconds:g} seconds and was stopped."
        )
    if stopped == "disk_limit":
        raise SandboxRefused(
            "disk_limit", f"The model wrote more than {limits.disk_bytes // 1024**2} MiB and was stopped."
        )
    returncode = process.returncode
    response = _read_response(job_dir / "response.json")
    if response is not None and response.get("ok") is True and returncode == 0:
        return SandboxOutcome(
            response=response, job_dir=job_dir, seconds=seconds, notes=(*notes, *cgroups.notes)
        )
    logger.info("sandbox run failed (exit %s): %s", returncode, log_tail)
    raise _refusal(returncode, response, limits, out_of_memory, too_many_processes)


def _fresh_file(path: Path) -> int:
    """Create ``path`` empty (whatever was there is removed) and return a descriptor the host keeps on it."""
    path.unlink(missing_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _memory_file(content: bytes) -> int:
    descriptor = os.memfd_create("synthex-seccomp", 0)
    os.write(descriptor, content)
    os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


def _bytes_on_disk(descriptors: list[int]) -> int:
    """What the files behind ``descriptors`` take: their length or their allocated blocks, the larger."""
    total = 0
    for descriptor in descriptors:
        info = os.fstat(descriptor)
        total += max(info.st_size, info.st_blocks * 512)
    return total


def _watch(process: subprocess.Popen[bytes], outputs: list[int], limits: SandboxLimits) -> str:
    """Wait for the run; kill its process group past the wall clock or the disk quota. Returns "exited",
    "timeout" or "disk_limit"."""
    deadline = time.monotonic() + limits.wall_seconds
    while True:
        try:
            process.wait(timeout=min(POLL_SECONDS, max(deadline - time.monotonic(), 0.001)))
        except subprocess.TimeoutExpired:
            pass
        else:
            return "exited"
        if _bytes_on_disk(outputs) > limits.disk_bytes:
            stopped = "disk_limit"
        elif time.monotonic() >= deadline:
            stopped = "timeout"
        else:
            continue
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return stopped


def _refusal(
    returncode: int,
    response: dict[str, Any] | None,
    limits: SandboxLimits,
    out_of_memory: bool,
    too_many_processes: bool,
) -> SandboxRefused:
    """The refusal that names why a finished run did not succeed, the likeliest cause first."""
    if out_of_memory:
        return SandboxRefused(
            "memory_limit", f"The model used more than {limits.memory_bytes // 1024**2} MiB of memory."
        )
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL) and (
        response is None
    ):
        return SandboxRefused(
            "cpu_limit", f"The model used more than {limits.cpu_seconds} CPU seconds and was stopped."
        )
    if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return SandboxRefused(
            "file_size_limit", f"The model wrote more than {limits.file_size_bytes // 1024**2} MiB."
        )
    if response is not None and response.get("ok") is False and isinstance(response.get("error"), dict):
        error = response["error"]
        code = str(error.get("code", "model_error"))[:40]
        message = str(error.get("message", ""))[:600]
        if too_many_processes:
            code, message = "process_limit", f"The model started too many processes ({message})."
        return SandboxRefused(code, f"The model failed inside the sandbox: {message}")
    if too_many_processes:
        return SandboxRefused(
            "process_limit", "The model started more processes than allowed and was stopped."
        )
    return SandboxRefused(
        "no_response", f"The sandboxed model exited (status {returncode}) without a valid response."
    )


def open_output(path: Path, max_bytes: int) -> BinaryIO:
    """Open a file a sandboxed model wrote, for reading, without trusting anything about it.

    The last component is not followed if it is a symlink (``O_NOFOLLOW``), opening does not block if it is
    a FIFO (``O_NONBLOCK``), and only a regular file of at most ``max_bytes`` is accepted (``fstat`` on the
    open descriptor, so it cannot be swapped after the check): read it only through the returned file. The
    refusal (``SandboxRefused``, code ``bad_output``) says nothing about what a symlink pointed to.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SandboxRefused("bad_output", "The model wrote no output.") from None
    except OSError:
        raise SandboxRefused("bad_output", "The model's output is not a regular file.") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxRefused("bad_output", "The model's output is not a regular file.")
        if info.st_size > max_bytes:
            limit = f"{max_bytes // 1024**2} MiB" if max_bytes >= 1024**2 else f"{max_bytes} bytes"
            raise SandboxRefused("bad_output", f"The model's output is larger than {limit}.")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _tail(path: Path) -> str:
    try:
        with open_output(path, 2**63 - 1) as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - LOG_TAIL_CHARS))
            return handle.read(LOG_TAIL_CHARS).decode("utf-8", "replace")
    except (OSError, SandboxRefused):
        return ""


def _read_response(path: Path) -> dict[str, Any] | None:
    try:
        with open_output(path, MAX_RESPONSE_BYTES) as handle:
            data = json.loads(handle.read(MAX_RESPONSE_BYTES).decode("utf-8"))
    except (OSError, ValueError, SandboxRefused):
        return None
    if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
        return None
    return data
