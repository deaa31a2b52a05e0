"""The `synthex` CLI on a large file (issue #8): throughput >= 50% of the server-side chunked-API benchmark,
and a resume after a killed process that re-sends at most one chunk.

Runs a throw-away instance under gunicorn (one sync worker, with an access log), generates a CSV of SIZE_MB
and times, in the same run (medians of REPEAT):
- the server-side benchmark of bench/upload.py: the chunked upload API driven directly (raw 8 MiB PUTs,
  no client-side hashing, then `complete/`);
- `synthex upload PRODUCT FILE --no-submit` as a process: the upload session part (what the CLI reports as
  the file's seconds: reading, SHA-256 per chunk and of the whole file, PUTs, `complete/`), and the whole
  command wall time including attaching the upload to a version (validation), compared with the API path's
  upload + the same attach call;
- a resume: the CLI is SIGKILLed once the server holds about half of the chunks, then run again; the server's
  access log counts every chunk PUT of that upload across both runs.

    .venv/bin/python bench/cli.py [SIZE_MB=1024] [REPEAT=3]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upload import free_port, make_csv, manage  # noqa: E402  (bench/upload.py: same data, same setup)

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def run_cli(env: dict[str, str], *args: str) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run(
        [PY, "-m", "synthex_client", *args, "--json", "-q"], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"synthex {' '.join(args)} exited {done.returncode}: {done.stdout} {done.stderr}")
    return seconds, json.loads(done.stdout)


def api_upload(client: httpx.Client, source: Path, size: int, name: str) -> tuple[str, float]:
    """bench/upload.py's server-side loop: the chunked API driven directly."""
    start = time.perf_counter()
    upload = client.post("/api/v1/uploads/", json={"filename": name, "size": size}).json()
    with source.open("rb") as handle:
        for index in range(upload["chunks"]):
            client.put(
                f"/api/v1/uploads/{upload['id']}/chunks/{index}/", content=handle.read(upload["chunk_size"])
            ).raise_for_status()
    client.post(f"/api/v1/uploads/{upload['id']}/complete/").raise_for_status()
    return upload["id"], time.perf_counter() - start


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    var = Path(
        tempfile.mkdtemp(
            prefix="synthex-bench-cli-", dir=str(REPO / "var") if (REPO / "var").exists() else None
        )
    )
    env = {
        **os.environ,
        "SYNTHEX_VAR_DIR": str(var),
        "DEBUG": "0",
        "SYNTHEX_MAX_UPLOAD_BYTES": str(4 * 1024**3),
    }
    manage(env, "migrate", "-v0")
    setup = (
        "from marketplace.accounts.services import sign_up, api_token_for;"
        "from marketplace.catalog.services import create_product, LicensePrice;"
        "u = sign_up(username='bench', email='b@example.test', password='bench-pass-123', provider_name='Bench');"
        "create_product(user=u, organization=u.provider_organizations().get(), title='Big', summary='big', "
        "domain='census', licenses=[LicensePrice('standard', 100, 'USD')]);"
        "print(api_token_for(u))"
    )
    token = manage(env, "shell", "-c", setup).strip().splitlines()[-1]
    source = var / "big.csv"
    make_csv(source, size_mb)
    size = source.stat().st_size
    port = free_port()
    access_log = var / "access.log"
    server = subprocess.Popen(
        [
            str(Path(PY).parent / "gunicorn"),
            "marketplace.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "600",
            "--access-logfile",
            str(access_log),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    cli_env = {
        **os.environ,
        "SYNTHEX_URL": url,
        "SYNTHEX_TOKEN": token,
        "SYNTHEX_CONFIG": str(var / "cli" / "config.json"),
        "PYTHONPATH": str(REPO / "client"),
    }
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=900)
        times: dict[str, list[float]] = {"api": [], "api_total": [], "cli": [], "cli_total": []}
        for _ in range(repeat):
            upload_id, seconds = api_upload(client, source, size, "big.csv")
            start = time.perf_counter()
            response = client.post(
                "/api/v1/products/big/versions/", json={"synthetic": [upload_id], "submit": False}
            )
            if response.status_code != 201:
                raise SystemExit(f"version failed: {response.status_code} {response.text[:300]}")
            times["api"].append(seconds)
            times["api_total"].append(seconds + time.perf_counter() - start)

            wall, body = run_cli(cli_env, "upload", "big", str(source), "--no-submit")
            (item,) = body["files"]
            assert item["sent_chunks"] == item["chunks"] and item["resumed_from_chunk"] == 0
            times["cli"].append(item["seconds"])
            times["cli_total"].append(wall)

        med = {name: statistics.median(values) for name, values in times.items()}
        mb = size / 1e6
        print(f"file: {mb:,.0f} MB, {repeat} runs, medians")
        print(
            f"server-side benchmark (chunked API, direct): {med['api']:6.2f} s  {mb / med['api']:7.1f} MB/s"
        )
        print(
            f"synthex upload (session part):              {med['cli']:6.2f} s  {mb / med['cli']:7.1f} MB/s"
            f"  = {med['api'] / med['cli']:.0%} of the server-side benchmark (target >= 50%)"
        )
        print(
            f"API upload + attach to version:             {med['api_total']:6.2f} s  {mb / med['api_total']:7.1f} MB/s"
        )
        print(
            f"synthex upload, whole command (process):    {med['cli_total']:6.2f} s  {mb / med['cli_total']:7.1f} MB/s"
            f"  = {med['api_total'] / med['cli_total']:.0%} of API upload + attach"
        )
        resume(cli_env, client, source, var, access_log)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)


def resume(cli_env: dict[str, str], client: httpx.Client, source: Path, var: Path, access_log: Path) -> None:
    """Kill the CLI mid-upload (SIGKILL, no chance to clean up), run it again, count chunk PUTs."""
    os.utime(source)  # a new modification time: a new file to the CLI, so a fresh session
    state = var / "cli" / "uploads.json"
    process = subprocess.Popen(
        [PY, "-m", "synthex_client", "upload", "big", str(source), "--no-submit", "-q"],
        cwd=REPO,
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upload_id, received, chunks = None, 0, 1
    while process.poll() is None:
        entries = json.loads(state.read_text()) if state.exists() else {}
        ids = [e["upload_id"] for e in entries.values() if e.get("sha256") is None]
        if ids:
            upload_id = ids[0]
            body = client.get(f"/api/v1/uploads/{upload_id}/").json()
            received, chunks = body["next_chunk"], body["chunks"]
            if received >= chunks // 2:
                process.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    process.wait()
    if upload_id is None or received >= chunks:
        raise SystemExit("the upload finished before it could be killed: use a larger SIZE_MB")
    time.sleep(0.5)  # let the worker finish with the request the kill cut off
    at_restart = client.get(f"/api/v1/uploads/{upload_id}/").json()["next_chunk"]
    wall, body = run_cli(cli_env, "upload", "big", str(source), "--no-submit")
    (item,) = body["files"]
    pattern = re.compile(rf'"PUT /api/v1/uploads/{upload_id}/chunks/(\d+)/')
    puts = [int(m.group(1)) for m in pattern.finditer(access_log.read_text())]
    resent = len(puts) - len(set(puts))
    print(
        f"resume after SIGKILL: {chunks} chunks; killed when the server held {received}; it held {at_restart} at "
        f"the re-run, which resumed at chunk {item['resumed_from_chunk']}, sent {item['sent_chunks']} chunks in "
        f"{wall:.2f} s (whole command); server log: {len(puts)} chunk PUTs for {chunks} chunks = "
        f"{resent} re-sent (target <= 1); final SHA-256 matches: {item['sha256'] == body['version']['files'][0]['sha256']}"
    )


if __name__ == "__main__":
    main()
