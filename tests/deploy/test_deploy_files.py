"""deploy/: the compose file parses and names only real commands, modules and queues; the systemd units pass
`systemd-analyze verify` (with /srv/synthex pointed at this checkout); the env example names real settings."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
QUEUES = {"default", "certify", "fit", "sample"}


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _check_command(argv: list[str]) -> None:
    program = argv[0].rsplit("/", 1)[-1]
    assert shutil.which(program) or (REPO / ".venv/bin" / program).exists(), program
    if program == "gunicorn":
        config = argv[argv.index("-c") + 1]
        assert (REPO / config).is_file()
        importlib.import_module(argv[-1].split(":")[0])
    elif program == "celery":
        assert argv[argv.index("-A") + 1] == "marketplace"
        for flag in ("-Q", "--queues"):
            if flag in argv:
                assert set(argv[argv.index(flag) + 1].split(",")) <= QUEUES
    elif program == "python":
        assert argv[1] == "manage.py"


def test_compose_file_runs_web_one_worker_per_queue_and_one_beat() -> None:
    services = _compose()["services"]
    commands = {name: service["command"] for name, service in services.items() if "command" in service}
    for name, argv in commands.items():
        if name not in ("postgres", "redis"):
            _check_command(argv)
    worker_queues = [argv[argv.index("-Q") + 1] for argv in commands.values() if "worker" in argv]
    assert sorted(worker_queues) == sorted(QUEUES)
    assert [name for name, argv in commands.items() if "beat" in argv] == ["beat"]
    assert services["web"]["environment"]["DJANGO_SETTINGS_MODULE"] == "marketplace.settings.production"
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert (DEPLOY / services["web"]["build"]["dockerfile"].removeprefix("deploy/")).is_file()


def _units(tmp_path: Path) -> list[Path]:
    """The units with /srv/synthex replaced by this checkout, and the worker template instantiated per queue."""
    made = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text().replace("/srv/synthex", str(REPO))
        names = (
            [unit.name.replace("@.", f"@{q}.") for q in sorted(QUEUES)] if "@." in unit.name else [unit.name]
        )
        for name in names:
            (tmp_path / name).write_text(text)
            made.append(tmp_path / name)
    return made


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    units = _units(tmp_path)
    assert [u.name for u in units] == [
        "synthex-beat.service",
        "synthex-web.service",
        "synthex-worker@certify.service",
        "synthex-worker@default.service",
        "synthex-worker@fit.service",
        "synthex-worker@sample.service",
    ]
    result = subprocess.run(
        ["systemd-analyze", "verify", *[f"./{u.name}" for u in units]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_verify_catches_a_missing_command(tmp_path: Path) -> None:
    unit = tmp_path / "synthex-web.service"
    unit.write_text(
        (DEPLOY / "systemd/synthex-web.service")
        .read_text()
        .replace("/srv/synthex", str(tmp_path / "nowhere"))
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", f"./{unit.name}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "not executable" in result.stderr or "No such file" in result.stderr


def test_units_start_real_programs_on_real_queues() -> None:
    for unit in (DEPLOY / "systemd").iterdir():
        start = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE)
        assert start is not None, unit.name
        argv = start.group(1).replace("%i", "certify").split()
        argv[0] = argv[0].replace("/srv/synthex/", "")
        _check_command(argv)


def test_env_example_names_only_variables_the_settings_read() -> None:
    read = "".join(
        path.read_text()
        for path in [*(REPO / "marketplace/settings").glob("*.py"), DEPLOY / "gunicorn.conf.py"]
    )
    names = re.findall(r"^([A-Z_0-9]+)=", (DEPLOY / "synthex.env.example").read_text(), re.MULTILINE)
    assert len(names) >= 15
    assert [name for name in names if f'"{name}"' not in read and name not in ("AWS_S3_REGION_NAME",)] == []
