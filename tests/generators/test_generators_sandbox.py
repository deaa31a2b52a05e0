"""The sandbox itself: a round trip, what happens without cgroups, and answers outside the protocol."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from marketplace.generators import sandbox
from marketplace.generators.sandbox import (
    SandboxRefused,
    job_folder,
    open_output,
    run_in_sandbox,
    sandbox_prefix,
)


def test_a_ping_round_trip_answers_in_the_protocol_and_leaves_no_cgroup() -> None:
    with job_folder() as folder:
        outcome = run_in_sandbox(folder, {"action": "ping"})
        assert (outcome.response, outcome.notes) == ({"protocol": "synthex.sandbox/v1", "ok": True}, ())
    assert not folder.exists()
    assert list(Path("/sys/fs/cgroup/pids").glob(f"{sandbox_prefix()}-*")) == []


def test_without_writable_cgroups_the_run_goes_on_and_says_which_limits_are_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", tmp_path / "no-cgroups")
    with job_folder() as folder:
        outcome = run_in_sandbox(folder, {"action": "ping"})
    assert outcome.notes == (
        "pids cgroup unavailable (No such file or directory): not limited by cgroup",
        "memory cgroup unavailable (No such file or directory): not limited by cgroup",
    )


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"action": "explode"}, "The model failed inside the sandbox: Unknown action 'explode'."),
        ({"action": "sample", "model": "missing.pkl", "rows": 1, "seed": 0, "batch_size": 1}, None),
    ],
)
def test_bad_requests_are_answered_with_an_error(request_body: dict[str, Any], message: str | None) -> None:
    with job_folder() as folder, pytest.raises(SandboxRefused) as refused:
        run_in_sandbox(folder, request_body)
    if message is not None:
        assert refused.value.message == message
    else:
        assert refused.value.message.startswith(
            "The model failed inside the sandbox: FileNotFoundError: [Errno 2] No such file or directory:"
        )


def _symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_symlink_to("/etc/hostname"), "The model's output is not a regular file."),
        (_symlink_to("/nonexistent/secret.parquet"), "The model's output is not a regular file."),
        (os.mkfifo, "The model's output is not a regular file."),
        (os.mkdir, "The model's output is not a regular file."),
        (lambda path: path.write_bytes(b"x" * 2048), "The model's output is larger than 1024 bytes."),
        (lambda path: None, "The model wrote no output."),
    ],
    ids=["symlink-to-a-host-file", "symlink-to-nothing", "fifo", "directory", "too-large", "missing"],
)
def test_outputs_are_opened_only_as_bounded_regular_files_without_following_links(
    tmp_path: Path, make: Callable[[Path], None], message: str
) -> None:
    """The host's own check of what a model left (beyond the sandbox's binds): it never follows a symlink,
    never blocks on a FIFO, and its refusal does not tell whether a link's target exists on the host."""
    path = tmp_path / "output.parquet"
    make(path)
    started = time.monotonic()
    with pytest.raises(SandboxRefused) as refused:
        open_output(path, max_bytes=1024)
    assert (refused.value.code, refused.value.message) == ("bad_output", message)
    assert time.monotonic() - started < 5


def test_a_regular_output_is_read_through_the_checked_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "output.parquet"
    path.write_bytes(b"PAR1")
    with open_output(path, max_bytes=4) as handle:
        assert handle.read() == b"PAR1"
