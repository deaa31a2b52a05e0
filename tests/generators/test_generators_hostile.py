"""Uploaded synthesizers are code: hostile ones are refused with a clear message and the host is untouched."""

from __future__ import annotations

import io
import pickle
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from generators_support import REPO, fake_model, hostile_pickle

from marketplace.certification.models import Certificate, Job
from marketplace.generators.models import GeneratorModel

GOOD_FRAME = (
    "pd.DataFrame({'age': [30] * n, 'workclass': ['Private'] * n, 'education-num': [9] * n, "
    "'hours-per-week': [40] * n, 'sex': ['Male'] * n, 'class': ['<=50K'] * n})"
)


def _sandbox_leftovers() -> list[str]:
    """Sandbox cgroups, job folders and processes still around (there must be none after a run)."""
    found = [
        str(path)
        for root in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/memory"))
        for path in root.glob("synthex-sandbox-*")
    ]
    found += [str(path) for path in Path("/tmp").glob("synthex-sandbox-*")]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"synthex-sandbox-" in command:
                found.append(f"process {entry.name}")
    return found


def _refusal(generator: GeneratorModel) -> str:
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert generator.status == GeneratorModel.Status.FAILED
    assert job.status == Job.Status.FAILED
    assert generator.version.status == "failed"
    assert not Certificate.objects.filter(version=generator.version).exists()
    assert _sandbox_leftovers() == []
    return job.error


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            fake_model("pd.DataFrame({'x': range(n)})"),
            "The model returned other columns than declared (missing: age, workclass, education-num, "
            "hours-per-week, sex, class; unexpected: x).",
        ),
        (
            fake_model(GOOD_FRAME + ".assign(age='old')"),
            "Column 'age' is declared numerical but the model returned string.",
        ),
        (fake_model(GOOD_FRAME + ".head(n - 1)"), "The model returned 319 rows; 320 were requested."),
        (
            fake_model(
                GOOD_FRAME + "[['sex', 'age', 'workclass', 'education-num', 'hours-per-week', 'class']]"
            ),
            "The model returned other columns than declared (same columns in another order).",
        ),
        (
            fake_model("[1, 2, 3]"),
            "The model failed inside the sandbox: The model returned list, not a table.",
        ),
        (
            pickle.dumps({"not": "a model"}),
            "The model failed inside the sandbox: The file does not hold an SDV synthesizer (no sample method).",
        ),
    ],
    ids=[
        "wrong-columns",
        "wrong-types",
        "wrong-row-count",
        "wrong-order",
        "not-a-table",
        "not-a-synthesizer",
    ],
)
def test_models_with_wrong_output_are_refused(
    upload_generator: Callable[..., Any], tight_sandbox: Any, model: bytes, message: str
) -> None:
    assert _refusal(upload_generator(model)) == message


def test_a_model_that_writes_outside_its_folder_is_refused(
    upload_generator: Callable[..., Any], tight_sandbox: Any, tmp_path: Path
) -> None:
    targets = [REPO / "pwned-by-model.txt", Path("/root/pwned-by-model.txt"), tmp_path / "pwned.txt"]
    expression = " or ".join(f"open({str(t)!r}, 'w').write('pwned')" for t in targets)
    error = _refusal(upload_generator(hostile_pickle(expression)))
    assert error == (
        "The model failed inside the sandbox: OSError: [Errno 30] Read-only file system: "
        f"'{targets[0]}' (at <string>:1)"
    )
    assert [t.exists() for t in targets] == [False, False, False]


def test_a_model_that_opens_a_socket_is_refused_and_reaches_nothing(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        model = hostile_pickle(
            f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'stolen')"
        )
        error = _refusal(upload_generator(model))
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert error.startswith("The model failed inside the sandbox: ConnectionRefusedError: [Errno 111]")


def test_a_model_that_looks_for_secrets_finds_only_the_interpreter(
    upload_generator: Callable[..., Any], tight_sandbox: Any, settings: Any
) -> None:
    listing = "sorted(__import__('os').listdir({!r}))"
    expression = "{{}}[str(({}, {}, {}, __import__('os').stat('/etc/shadow').st_size, {}))]".format(
        listing.format(str(REPO)),
        listing.format("/root"),
        listing.format(str(settings.VAR_DIR)),
        "sorted(__import__('os').environ)",
    )
    error = _refusal(upload_generator(hostile_pickle(expression)))
    visible = (
        "(['.venv', 'marketplace'], ['.pyenv'], [], 0, "
        "['HOME', 'LC_CTYPE', 'MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PWD', "
        "'PYTHONDONTWRITEBYTECODE', 'TMPDIR'])"
    )
    assert error == f'The model failed inside the sandbox: KeyError: "{visible}" (at <string>:1)'


def test_a_fork_bomb_is_stopped_by_the_process_limit(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    error = _refusal(upload_generator(hostile_pickle("[__import__('os').fork() for _ in iter(int, 1)]")))
    assert error.startswith("The model failed inside the sandbox: The model started too many processes")


def test_a_model_that_allocates_without_end_is_stopped(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    tight_sandbox.SYNTHEX_SANDBOX_MEMORY_BYTES = 256 * 1024**2
    error = _refusal(upload_generator(hostile_pickle("[b'x' * (32 * 2**20) for _ in iter(int, 1)]")))
    assert error == "The model used more than 256 MiB of memory."


def test_a_model_that_loops_forever_is_stopped_by_the_cpu_limit(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    tight_sandbox.SYNTHEX_SANDBOX_CPU_SECONDS = 2
    error = _refusal(upload_generator(hostile_pickle("any(iter(int, 1))")))
    assert error == "The model used more than 2 CPU seconds and was stopped."


def test_a_model_that_sleeps_forever_is_stopped_by_the_wall_clock(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    tight_sandbox.SYNTHEX_SANDBOX_WALL_SECONDS = 3
    error = _refusal(upload_generator(hostile_pickle("__import__('time').sleep(3600)")))
    assert error == "The model did not finish within 3 seconds and was stopped."


def test_a_model_carrying_its_training_rows_is_refused(
    upload_generator: Callable[..., Any], fitted_model_bytes: bytes, people: Any
) -> None:
    model = pickle.loads(fitted_model_bytes)  # the test's own honest model, not an upload
    model._kept_training_data = people.head(320).copy()
    leaky = io.BytesIO()
    pickle.dump(model, leaky)
    error = _refusal(upload_generator(leaky.getvalue()))
    assert error == (
        "The uploaded model carries 320 rows identical to your reference train rows (SDV synthesizers can "
        "keep the data they were fitted on). Remove them before saving the model (or fit it here), then "
        "upload it again."
    )


def test_the_generator_file_is_never_unpickled_in_the_web_or_worker_process(
    upload_generator: Callable[..., Any], tight_sandbox: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "loaded-here"
    generator = upload_generator(hostile_pickle(f"open({str(marker)!r}, 'x')"))
    assert generator.status == GeneratorModel.Status.FAILED
    assert not marker.exists()


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')._exit(0)", "The sandboxed model exited (status 0) without a valid response."),
        (
            'open(\'response.json\', \'w\').write(\'{"protocol": "synthex.sandbox/v1", "ok": true, '
            '"scan": {"matched_rows": 0}}\') and __import__(\'os\')._exit(0)',
            "The model's output is not a readable Parquet file",
        ),
    ],
    ids=["exits-silently", "forges-a-response"],
)
def test_a_model_that_answers_outside_the_protocol_is_refused(
    upload_generator: Callable[..., Any], tight_sandbox: Any, expression: str, message: str
) -> None:
    assert _refusal(upload_generator(hostile_pickle(expression))).startswith(message)
