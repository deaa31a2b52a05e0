"""The sandbox itself: a round trip, what happens without cgroups, and answers outside the protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketplace.generators import sandbox
from marketplace.generators.sandbox import SandboxRefused, job_folder, run_in_sandbox


def test_a_ping_round_trip_answers_in_the_protocol_and_leaves_no_cgroup() -> None:
    with job_folder() as folder:
        outcome = run_in_sandbox(folder, {"action": "ping"})
        assert (outcome.response, outcome.notes) == ({"protocol": "synthex.sandbox/v1", "ok": True}, ())
    assert not folder.exists()
    assert list(Path("/sys/fs/cgroup/pids").glob("synthex-sandbox-*")) == []


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
