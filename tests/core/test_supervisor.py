"""``make run``'s supervisor: a process killed with SIGKILL is started again while the others keep running
(the same pid: never restarted); Ctrl-C (SIGINT) stops every process and exits 0 without an ERROR line."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from marketplace.core.supervisor import read_procfile

REPO = Path(__file__).resolve().parents[2]
SLEEPER = f"{sys.executable} -c \"import time; print('up', flush=True); time.sleep(600)\""


class Output:
    """The supervisor's output lines, read in a thread, awaited by pattern."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, seconds: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matched {pattern!r} in:\n" + "\n".join(self.seen)) from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def wait_for_each(self, patterns: list[str], seconds: float = 60) -> list[re.Match[str]]:
        """Lines matching every pattern, in whatever order they come: a child's own output and the
        supervisor's line about starting it are written by different processes and may arrive either way."""
        deadline = time.monotonic() + seconds
        found: dict[str, re.Match[str]] = {}
        while len(found) < len(patterns):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                missing = [p for p in patterns if p not in found]
                raise AssertionError(f"no line matched {missing!r} in:\n" + "\n".join(self.seen)) from None
            self.seen.append(line)
            for pattern in patterns:
                match = re.search(pattern, line)
                if pattern not in found and match:
                    found[pattern] = match
        return [found[pattern] for pattern in patterns]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_killed_process_is_started_again_the_others_keep_running_and_ctrl_c_stops_all(
    tmp_path: Path,
) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(f"# two processes\nweb: {SLEEPER}\n\nworker: {SLEEPER}\n")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "marketplace.core.supervisor", "-f", str(procfile), "--stop-seconds", "5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = Output(supervisor)
        started = {}
        for _ in range(2):
            found = output.wait_for(r"(web|worker) +\| started \(pid (\d+)\)")
            started[found[1]] = int(found[2])
        os.kill(started["worker"], signal.SIGKILL)
        output.wait_for(r"worker +\| exited with status -9; starting it again in 1 s")
        started_again, _ = output.wait_for_each([r"worker +\| started \(pid (\d+)\)", r"worker +\| up"])
        restarted = int(started_again[1])
        assert restarted != started["worker"]
        assert _alive(started["web"]) and _alive(restarted)

        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(timeout=30) == 0
        output.wait_for(r"supervisor +\| all processes stopped")
        assert not _alive(started["web"]) and not _alive(restarted)
        assert not any("ERROR" in line or "Traceback" in line for line in output.seen)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_the_procfile_is_read_in_order_and_a_bad_line_is_refused(tmp_path: Path) -> None:
    assert list(read_procfile(REPO / "Procfile")) == ["web", "worker", "localstripe", "beat"]
    bad = tmp_path / "Procfile"
    bad.write_text("web gunicorn\n")
    with pytest.raises(ValueError, match="not a Procfile line"):
        read_procfile(bad)
