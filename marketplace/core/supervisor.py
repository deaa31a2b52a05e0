"""The process supervisor of ``make run``: runs the Procfile's processes, restarts any that dies, stops all.

honcho (used before) stops every process as soon as one exits, so a worker killed by the kernel took the web
site down with it. Here a process that exits is started again (after 1 s, doubling up to 30 s while it keeps
dying within 10 s of its start) and the others keep running; SIGINT (Ctrl-C) or SIGTERM stops them all (SIGTERM
to each process, SIGKILL to its process group after ``--stop-seconds``) and exits 0. Each child runs in its own session, so the
terminal's Ctrl-C reaches only the supervisor, which then stops the children in order; a child also gets
SIGTERM if the supervisor itself is killed (Linux parent-death signal).

    python -m marketplace.core.supervisor [-f Procfile] [--stop-seconds 10] [NAME ...]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_AFTER_SECONDS = 10.0


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines of a Procfile, in order (blank lines and ``#`` comments skipped)."""
    commands: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, command = line.partition(":")
        if not separator or not name.strip().replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{path}: not a Procfile line: {line!r}")
        commands[name.strip()] = command.strip()
    return commands


_PRCTL: Callable[..., int] | None
try:  # looked up here, not in the forked child: the child only calls it
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the supervisor dies (Linux; elsewhere nothing)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


@dataclass
class Child:
    name: str
    command: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    delay: float = RESTART_FIRST_SECONDS
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    """Runs ``commands`` (name → shell command) until stopped; see the module's docstring."""

    def __init__(
        self, commands: dict[str, str], *, stop_seconds: float = 10.0, out: IO[str] = sys.stdout
    ) -> None:
        self.children = [Child(name, command) for name, command in commands.items()]
        self.stop_seconds = stop_seconds
        self.out = out
        self.width = max((len(name) for name in commands), default=0)
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def say(self, name: str, text: str) -> None:
        with self.lock:
            self.out.write(f"{time.strftime('%H:%M:%S')} {name.ljust(self.width)} | {text}\n")
            self.out.flush()

    def _pipe(self, child: Child, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(child.name, raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    def start(self, child: Child) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {child.command}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        child.readers = []
        if child.process.stdout is not None:
            reader = threading.Thread(target=self._pipe, args=(child, child.process.stdout), daemon=True)
            reader.start()
            child.readers.append(reader)
        self.say(child.name, f"started (pid {child.process.pid})")

    def _check(self, child: Child, now: float) -> None:
        process = child.process
        if process is not None and process.poll() is not None:
            for reader in child.readers:
                reader.join(timeout=2)
            if now - child.started_at >= STABLE_AFTER_SECONDS:
                child.delay = RESTART_FIRST_SECONDS
            wait, child.delay = child.delay, min(child.delay * 2, RESTART_MAX_SECONDS)
            child.restart_at = now + wait
            child.process = None
            self.say(
                child.name, f"exited with status {process.returncode}; starting it again in {wait:.0f} s"
            )
        elif process is None and now >= child.restart_at:
            self.start(child)

    def run(self) -> int:
        """Start every child and supervise them until SIGINT or SIGTERM; returns the exit status (0)."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        for child in self.children:
            self.start(child)
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for child in self.children:
                self._check(child, now)
        self.stop()
        return 0

    def stop(self) -> None:
        """SIGTERM to every child, SIGKILL to the process groups of those still running after ``stop_seconds``."""
        running = [
            (child, child.process)
            for child in self.children
            if child.process is not None and child.process.poll() is None
        ]
        for child, process in running:
            self.say(child.name, "stopping")
            # To the process alone: Celery and gunicorn stop their own children in order (a SIGTERM to the
            # whole group would kill the worker's pool under it, which it reports as errors).
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_seconds
        for child, process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(child.name, f"still running after {self.stop_seconds:.0f} s; killing it")
                _signal_group(process, signal.SIGKILL)
                process.wait()
            for reader in child.readers:
                reader.join(timeout=2)
        self.say("supervisor", "all processes stopped")


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a Procfile's processes; restart any that exits.")
    parser.add_argument("-f", "--procfile", default="Procfile", type=Path)
    parser.add_argument("--stop-seconds", default=10.0, type=float)
    parser.add_argument("names", nargs="*", help="processes to run (default: all)")
    options = parser.parse_args(argv)
    commands = read_procfile(options.procfile)
    unknown = [name for name in options.names if name not in commands]
    if unknown:
        parser.error(f"not in {options.procfile}: {', '.join(unknown)}")
    chosen = {name: commands[name] for name in (options.names or commands)}
    return Supervisor(chosen, stop_seconds=options.stop_seconds).run()


if __name__ == "__main__":
    sys.exit(main())
