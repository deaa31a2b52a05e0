"""Uploaded synthesizers are code: hostile ones are refused with a clear message and the host is untouched."""

from __future__ import annotations

import errno
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
from marketplace.generators.sandbox import sandbox_prefix

GOOD_FRAME = (
    "pd.DataFrame({'age': [30] * n, 'workclass': ['Private'] * n, 'education-num': [9] * n, "
    "'hours-per-week': [40] * n, 'sex': ['Male'] * n, 'class': ['<=50K'] * n})"
)


def _sandbox_leftovers() -> list[str]:
    """This process's sandbox cgroups, job folders and processes still around (there must be none after a
    run); another xdist worker's runs, named by its own pid, are its business."""
    prefix = sandbox_prefix()
    found = [
        str(path)
        for root in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/memory"))
        for path in root.glob(f"{prefix}-*")
    ]
    found += [str(path) for path in Path("/tmp").glob(f"{prefix}-*")]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"{prefix}-".encode() in command:
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
    exists = "__import__('os').path.exists({!r})"
    expression = "{{}}[str(({}, {}, {}, {}, {}))]".format(
        listing.format(str(REPO)),
        listing.format("/root"),
        exists.format(str(settings.VAR_DIR)),
        exists.format("/etc/shadow"),
        "sorted(__import__('os').environ)",
    )
    error = _refusal(upload_generator(hostile_pickle(expression)))
    visible = (
        "(['.venv', 'marketplace'], ['.pyenv'], False, False, "
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


# -- attacks on the host through the job folder (issue 18, items 1 and 7) -----------------------------------


def _answering(source: str) -> bytes:
    """A model that runs ``source`` when loaded, then answers "ok, 40 rows in output.parquet" and exits: the
    host takes whatever ``source`` left as the model's output."""
    response = '{"protocol": "synthex.sandbox/v1", "ok": true, "output": "output.parquet", "rows": 40}'
    tail = f"open('response.json', 'w').write({response!r})\nos._exit(0)\n"
    return hostile_pickle(f"exec({('import os' + chr(10) + source + tail)!r})")


def _attempt(statement: str) -> str:
    """``statement`` as a line that ignores the OSError a refused attempt raises."""
    return f"try:\n    {statement}\nexcept OSError:\n    pass\n"


@pytest.fixture
def hostile_generator(ready_generator: GeneratorModel) -> Callable[[bytes], GeneratorModel]:
    """Swap the stored model of a ready generator for ``model`` (as if it had passed its checks)."""
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    def make(model: bytes) -> GeneratorModel:
        sha = hashlib.sha256(model).hexdigest()
        name = storages["reference"].save(f"hostile/{sha}.pkl", ContentFile(model))
        GeneratorModel.objects.filter(pk=ready_generator.pk).update(storage_name=name, sha256=sha)
        ready_generator.refresh_from_db()
        return ready_generator

    return make


@pytest.fixture
def victim_parquet(people: Any) -> Path:
    """Another provider's content-addressed Parquet file (40 rows of the declared columns) on this host."""
    import hashlib
    import tempfile

    from django.core.files.storage import storages

    from marketplace.generators import storage

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "victim.parquet"
        people.tail(40).reset_index(drop=True).to_parquet(path, index=False)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        name = storage.save_once("default", f"objects/{sha[:2]}/{sha}.parquet", path)
    return Path(storages["default"].path(name))


def _draw(generator: GeneratorModel, folder: Path) -> tuple[str, str]:
    """Draw 40 rows; return the refusal's (code, message), or ("drawn", sha256) when the host accepted them."""
    from marketplace.generators.errors import GeneratorError
    from marketplace.generators.services import draws

    try:
        sampled = draws.draw_in_sandbox(generator, rows=40, seed=1, conditions=None, folder=folder)
    except GeneratorError as error:
        return error.code, error.message
    return "drawn", sampled.sha256


def test_a_model_cannot_pass_off_a_host_file_as_its_output_through_a_symlink(
    hostile_generator: Callable[[bytes], GeneratorModel],
    victim_parquet: Path,
    tight_sandbox: Any,
    tmp_path: Path,
) -> None:
    import hashlib

    victim_sha = hashlib.sha256(victim_parquet.read_bytes()).hexdigest()
    answers = []
    for target in (victim_parquet, victim_parquet.with_name("absent.parquet")):
        source = _attempt("os.unlink('output.parquet')") + _attempt(
            f"os.symlink({str(target)!r}, 'output.parquet')"
        )
        answers.append(_draw(hostile_generator(_answering(source)), tmp_path))
    assert answers[0] != ("drawn", victim_sha)
    # The refusal is the same whether the host path exists or not: it answers nothing about the host.
    assert answers[0] == answers[1]
    assert answers[0][0] == "bad_output"
    assert str(victim_parquet.parent) not in answers[0][1]
    assert _sandbox_leftovers() == []


def test_a_model_cannot_see_another_instance_or_the_host_configuration(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    import secrets
    import shutil

    other = Path("/opt") / f"synthex-other-instance-{secrets.token_hex(4)}"
    (other / "var" / "keys").mkdir(parents=True)
    (other / "var" / "keys" / "signing.pem").write_text("PRIVATE KEY")
    try:
        probes = ", ".join(
            f"__import__('os').path.exists({path!r})"
            for path in (str(other / "var"), str(other / "var" / "keys" / "signing.pem"), "/etc/hostname")
        )
        error = _refusal(
            upload_generator(
                hostile_pickle(f"{{}}[str(({probes}, sorted(__import__('os').listdir('/etc'))))]")
            )
        )
    finally:
        shutil.rmtree(other)
    visible = "(False, False, False, ['ld.so.cache'])"
    assert error == f'The model failed inside the sandbox: KeyError: "{visible}" (at <string>:1)'


def _in_thread(function: Callable[[], Any], seconds: float) -> Any:
    """``function()``'s result, or ``"still running"`` when it did not return within ``seconds``."""
    import threading

    result: list[Any] = ["still running"]
    thread = threading.Thread(target=lambda: result.__setitem__(0, function()), daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0]


def test_a_fifo_as_output_does_not_hold_the_worker(
    hostile_generator: Callable[[bytes], GeneratorModel], tight_sandbox: Any, tmp_path: Path
) -> None:
    source = _attempt("os.unlink('output.parquet')") + _attempt("os.mkfifo('output.parquet')")
    generator = hostile_generator(_answering(source))
    answer = _in_thread(lambda: _draw(generator, tmp_path), seconds=60)
    assert answer != "still running"
    assert answer[0] == "bad_output"
    assert _sandbox_leftovers() == []


def test_a_model_cannot_fill_the_host_disk_with_many_files(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    tight_sandbox.SYNTHEX_SANDBOX_FILE_BYTES = 16 * 1024**2
    tight_sandbox.SYNTHEX_SANDBOX_SCRATCH_BYTES = 32 * 1024**2
    source = (
        "written = 0\nproblem = ''\n"
        "for index in range(48):\n"
        "    try:\n"
        "        with open(f'junk-{index}', 'wb') as handle:\n"
        "            handle.write(b'x' * 8 * 2**20)\n"
        "        written += 8 * 2**20\n"
        "    except OSError as error:\n"
        "        problem = error.strerror\n"
        "        break\n"
        "raise KeyError((written // 2**20, problem))\n"
    )
    error = _refusal(upload_generator(hostile_pickle(f"exec({source!r})")))
    assert error == (
        "The model failed inside the sandbox: KeyError: (32, 'No space left on device') (at <string>:11)"
    )


def test_a_model_cannot_reserve_host_disk_beyond_its_file_size_limit(
    upload_generator: Callable[..., Any], tight_sandbox: Any
) -> None:
    tight_sandbox.SYNTHEX_SANDBOX_FILE_BYTES = 16 * 1024**2
    # fallocate(FALLOC_FL_KEEP_SIZE) reserves disk blocks without growing the file: RLIMIT_FSIZE does not see it.
    source = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "for name in ('output.parquet', 'response.json', 'scratch'):\n"
        "    descriptor = os.open(name, os.O_RDWR | os.O_CREAT)\n"
        "    libc.fallocate(descriptor, 1, ctypes.c_long(0), ctypes.c_long(2**30))\n"
        "    if os.fstat(descriptor).st_blocks * 512 >= 2**30:\n"
        "        raise KeyError(name)\n"
        "raise KeyError(ctypes.get_errno())\n"
    )
    error = _refusal(upload_generator(hostile_pickle(f"exec({('import os' + chr(10) + source)!r})")))
    assert error == f"The model failed inside the sandbox: KeyError: {errno.EOPNOTSUPP} (at <string>:9)"


def test_a_model_that_writes_more_output_than_the_job_quota_is_stopped(
    hostile_generator: Callable[[bytes], GeneratorModel], tight_sandbox: Any, tmp_path: Path
) -> None:
    tight_sandbox.SYNTHEX_SANDBOX_FILE_BYTES = 64 * 1024**2
    tight_sandbox.SYNTHEX_SANDBOX_DISK_BYTES = 16 * 1024**2
    source = (
        "with open('output.parquet', 'wb') as handle:\n"
        "    for _ in range(7):\n"
        "        handle.write(b'x' * 8 * 2**20)\n"
        "        handle.flush()\n"
        "        __import__('time').sleep(0.5)\n"
    )
    assert _draw(hostile_generator(_answering(source)), tmp_path) == (
        "disk_limit",
        "The model wrote more than 16 MiB and was stopped.",
    )
