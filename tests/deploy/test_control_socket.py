"""Two instances never share gunicorn's control socket (issue 17 #11): ``make run``'s web process and the
deploy config keep it under the instance's var dir instead of the per-user ~/.gunicorn/gunicorn.ctl."""

from __future__ import annotations

import os
import runpy
import socket
import stat
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_make_run_web_process_keeps_its_control_socket_in_its_var_dir(tmp_path: Path) -> None:
    web = next(line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = web.split(":", 1)[1].strip().replace("--workers 2", "--workers 1")
    var = tmp_path / "var"
    env = {**os.environ, "SYNTHEX_VAR_DIR": str(var), "SYNTHEX_PORT": str(_free_port()), "DEBUG": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        control = var / "gunicorn.ctl"
        deadline = time.monotonic() + 60
        while not control.exists() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert control.exists(), "no control socket under the var dir"
        assert stat.S_ISSOCK(control.stat().st_mode)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_deploy_config_puts_the_control_socket_under_the_var_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNTHEX_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    config = runpy.run_path(str(REPO / "deploy" / "gunicorn.conf.py"))
    assert config["control_socket"] == str(tmp_path / "gunicorn.ctl")
