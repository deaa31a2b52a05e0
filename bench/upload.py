"""Upload of a large CSV through the API (issue #2): server peak RSS < 300 MB, throughput >= 40% of `cp`.

Runs a throw-away instance under gunicorn with one worker of the Procfile's kind (4 threads: the peak RSS
is per worker), generates a CSV of SIZE_MB on the same disk and times, in the same run (medians of REPEAT):
- `cp` of the file + sync (the reference);
- the resumable upload API (raw 32 MiB chunks PUT over one keep-alive connection without a chunk hash, the
  server hashing the whole file as it arrives, then `complete/`, then sync, which finds little: the server writes
  aligned blocks with O_DIRECT);
- validation: a Celery worker (queue ``default``, as in the Procfile) checks the complete upload (streaming
  parse, schema and statistics), the bench polls the upload until it is valid, then attaches it to a version
  (which reuses the profile and moves the file into storage);
- the browser's path: one multipart POST (Django's multipart parser, then the same validation in the
  request).
The web worker's and the Celery worker's RSS are sampled every 50 ms throughout. Before each timed step every file the run wrote is
flushed and evicted from the page cache (bench/_pagecache.py says why), so each starts from the same state.

    .venv/bin/python bench/upload.py [SIZE_MB=1024] [REPEAT=3]
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from _pagecache import evict_tree, warm

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_csv(path: Path, size_mb: int) -> None:
    """An adult-like CSV of ``size_mb`` MiB with a unique ``id`` per row, so at least one column passes the
    profiler's exact distinct-count cap and takes the sketch path, as real files with keys do."""
    rows = [
        f",{20 + i % 60},Private,{100000 + i * 37},Bachelors,{i % 16},Never-married,Sales,{i % 90},"
        f"United-States,<=50K\n"
        for i in range(20_000)
    ]
    with path.open("wb") as handle:
        handle.write(
            b"id,age,workclass,fnlwgt,education,education_num,marital,occupation,hours,country,class\n"
        )
        written, first = 0, 0
        while written < size_mb * 1024 * 1024:
            block = "".join(f"{first + i}{row}" for i, row in enumerate(rows)).encode()
            handle.write(block)
            written += len(block)
            first += len(rows)


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [PY, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    ).stdout


def bench_instance(prefix: str, max_upload_bytes: int) -> tuple[Path, dict[str, str], str]:
    """A throw-away instance (its own var dir, migrated) with a provider, a product ``big`` and the
    provider's API token; returns (var dir, environment for its processes, token)."""
    var = Path(tempfile.mkdtemp(prefix=prefix, dir=str(REPO / "var") if (REPO / "var").exists() else None))
    env = {
        **os.environ,
        "SYNTHEX_VAR_DIR": str(var),
        "DEBUG": "0",
        "SYNTHEX_MAX_UPLOAD_BYTES": str(max_upload_bytes),
        "SYNTHEX_DOWNLOAD_RATE": "1000/min",  # the benches fetch more often than a buyer would
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
    return var, env, manage(env, "shell", "-c", setup).strip().splitlines()[-1]


def put_chunks(port: int, token: str, upload: dict, source: Path) -> None:
    """PUT every chunk of ``source`` to the upload session over one keep-alive connection.

    ``http.client`` sends each chunk with one ``sendall`` (httpx re-slices the remaining bytes after every
    partial send, copying a 32 MiB chunk a dozen times), read into one reused buffer (a fresh 32 MiB
    object per chunk cost the client 0.4 s of page faults per GB): the client costs little CPU, and on a
    2-core machine the figure is the server's."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    buffer = bytearray(upload["chunk_size"])  # one buffer for every chunk: no fresh 32 MiB per chunk
    with source.open("rb") as handle:
        for index in range(upload["chunks"]):
            body = memoryview(buffer)[: handle.readinto(buffer)]
            connection.request(
                "PUT",
                f"/api/v1/uploads/{upload['id']}/chunks/{index}/",
                body=body,
                headers={"Authorization": f"Token {token}", "Content-Type": "application/octet-stream"},
            )
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise SystemExit(f"chunk {index} refused: {response.status} {answer[:300]!r}")
    connection.close()


def quiet_process(env: dict[str, str], program: str, *args: str) -> subprocess.Popen[bytes]:
    """A process of the instance (a .venv program run from the repository), its output discarded."""
    return subprocess.Popen(
        [str(Path(PY).parent / program), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_checker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A Celery worker on the ``default`` queue (as in the Procfile), which validates complete uploads."""
    return quiet_process(
        env, "celery", "-A", "marketplace", "worker", "--queues", "default", "--concurrency", "1",
        "--loglevel", "WARNING",
    )  # fmt: skip


def wait_checked(client: httpx.Client, upload_id: str) -> None:
    """Poll the upload until the worker has validated it (as `synthex upload` and the upload page do)."""
    while True:
        check = client.get(f"/api/v1/uploads/{upload_id}/").json()["validation"]
        if check["status"] == "valid":
            return
        if check["status"] == "invalid":
            raise SystemExit(f"the upload was refused: {check}")
        time.sleep(0.1)


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    var, env, token = bench_instance("synthex-bench-upload-", max(4 * 1024**3, 2 * size_mb * 1024**2))
    source = var / "big.csv"
    make_csv(source, size_mb)
    size = source.stat().st_size
    port = free_port()
    server = quiet_process(
        env, "gunicorn", "marketplace.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--threads", "4", "--timeout", "600",
    )  # fmt: skip
    checker = start_checker(env)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        worker = psutil.Process(server.pid).children()[0]
        for _ in range(100):  # the Celery worker's pool process, which runs the tasks
            children = psutil.Process(checker.pid).children()
            if children:
                break
            time.sleep(0.2)
        task_worker = children[0]
        phase = ["start"]
        peaks = {"start": worker.memory_info().rss}
        task_peaks = {"start": task_worker.memory_info().rss}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peaks[phase[0]] = max(peaks.get(phase[0], 0), worker.memory_info().rss)
                task_peaks[phase[0]] = max(task_peaks.get(phase[0], 0), task_worker.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"}, timeout=900
        )
        times: dict[str, list[float]] = {"cp": [], "chunks": [], "validate": [], "multipart": []}
        for run in range(repeat):
            target = var / "copy.csv"
            evict_tree(var, keep=[source])
            warm(source)
            start = time.perf_counter()
            subprocess.run(["cp", str(source), str(target)], check=True)
            subprocess.run(["sync"], check=True)
            times["cp"].append(time.perf_counter() - start)
            target.unlink()

            evict_tree(var, keep=[source])
            phase[0] = "chunks"
            start = time.perf_counter()
            upload = client.post("/api/v1/uploads/", json={"filename": "big.csv", "size": size}).json()
            put_chunks(port, token, upload, source)
            client.post(f"/api/v1/uploads/{upload['id']}/complete/").raise_for_status()
            subprocess.run(["sync"], check=True)
            times["chunks"].append(time.perf_counter() - start)

            evict_tree(var, keep=[source])
            phase[0] = "validate"
            start = time.perf_counter()
            wait_checked(client, upload["id"])
            response = client.post(
                "/api/v1/products/big/versions/", json={"synthetic": [upload["id"]], "submit": False}
            )
            times["validate"].append(time.perf_counter() - start)
            if response.status_code != 201:
                raise SystemExit(f"version failed: {response.status_code} {response.text[:300]}")

            evict_tree(var, keep=[source])
            phase[0] = "multipart"
            start = time.perf_counter()
            with source.open("rb") as handle:
                response = client.post(
                    "/api/v1/products/big/versions/",
                    data={"submit": "false"},
                    files={"synthetic": (f"big{run}.csv", handle, "text/csv")},
                )
            times["multipart"].append(time.perf_counter() - start)
            if response.status_code != 201:
                raise SystemExit(f"multipart upload failed: {response.status_code} {response.text[:300]}")
        done.set()
        sampler.join()
        med = {name: statistics.median(values) for name, values in times.items()}
        mb = size / 1e6
        print(f"file: {mb:,.0f} MB, {repeat} runs, medians")
        print(f"cp + sync:                       {med['cp']:6.2f} s  {mb / med['cp']:7.1f} MB/s")
        print(
            f"chunked upload API + sync:       {med['chunks']:6.2f} s  {mb / med['chunks']:7.1f} MB/s  = {med['cp'] / med['chunks']:.0%} of cp (target >= 40%)"
        )
        print(
            f"validation by the worker + attach: {med['validate']:6.2f} s  {mb / med['validate']:7.1f} MB/s"
        )
        print(
            f"multipart POST incl. validation: {med['multipart']:6.2f} s  {mb / med['multipart']:7.1f} MB/s  = {med['cp'] / med['multipart']:.0%} of cp"
        )
        print(
            f"server peak RSS: {max(*peaks.values(), *task_peaks.values()) / 1e6:.0f} MB (target < 300 MB); "
            "web worker by step: "
            + ", ".join(f"{name} {value / 1e6:.0f} MB" for name, value in peaks.items())
            + "; Celery worker by step: "
            + ", ".join(f"{name} {value / 1e6:.0f} MB" for name, value in task_peaks.items())
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        checker.terminate()
        checker.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
