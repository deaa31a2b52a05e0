"""Upload of a large CSV through the API (issue #2): server peak RSS < 300 MB; throughput of both paths.

Runs a throw-away instance under gunicorn with one worker of the Procfile's kind (4 threads: the peak RSS
is per worker), generates a CSV of SIZE_MB on the same disk and times, in the same run (medians of REPEAT):
- `cp` of the file + sync (the reference);
- the embedded path, the resumable upload API on the file system (raw 32 MiB chunks PUT over one keep-alive
  connection without a chunk hash, read by Django's request stream in 1 MiB blocks, hashed and written with
  buffered writes, then `complete/`, then sync);
- validation: a Celery worker (queue ``default``, as in the Procfile) checks the complete upload (streaming
  parse, schema and statistics), the bench polls the upload until it is valid, then attaches it to a version
  (which reuses the profile and moves the file into storage);
- the browser's path: one multipart POST (Django's multipart parser, then the same validation in the
  request).
The web worker's and the Celery worker's RSS are sampled every 50 ms throughout. Before each timed step every file the run wrote is
flushed and evicted from the page cache (bench/_pagecache.py says why), so each starts from the same state.

Then, when moto_server is installed, the production path on a second instance whose files live on S3
(moto_server on loopback, objects in its RAM): the same chunks PUT straight to the store with presigned
multipart part URLs, `complete/` (the server assembles the parts), then the worker's hash and validation of
the object and the attach (a copy inside the store). No byte of the file passes through the web worker.

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
from urllib.parse import urlsplit

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


def bench_instance(
    prefix: str, max_upload_bytes: int, extra: dict[str, str] | None = None
) -> tuple[Path, dict[str, str], str]:
    """A throw-away instance (its own var dir, migrated) with a provider, a product ``big`` and the
    provider's API token; returns (var dir, environment for its processes, token)."""
    var = Path(tempfile.mkdtemp(prefix=prefix, dir=str(REPO / "var") if (REPO / "var").exists() else None))
    env = {
        **os.environ,
        **(extra or {}),
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


def put_parts(upload: dict, source: Path) -> None:
    """PUT every chunk of ``source`` straight to the object store at its presigned part URL (one
    keep-alive connection to the store), as `synthex upload` does when the server's files are on S3."""
    target = urlsplit(upload["part_urls"][0])
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=900)
    buffer = bytearray(upload["chunk_size"])
    with source.open("rb") as handle:
        for index, url in enumerate(upload["part_urls"]):
            body = memoryview(buffer)[: handle.readinto(buffer)]
            parts = urlsplit(url)
            connection.request("PUT", f"{parts.path}?{parts.query}", body=body)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise SystemExit(f"part {index + 1} refused: {response.status} {answer[:300]!r}")
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


def wait_up(port: int) -> None:
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)


def start_moto() -> tuple[subprocess.Popen[bytes], str] | None:
    """moto_server on a free loopback port with a bucket ``bench``, or None when it is not installed."""
    program = Path(PY).parent / "moto_server"
    if not program.exists():
        return None
    port = free_port()
    process = subprocess.Popen(
        [str(program), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="bench")
    return process, url


def bench_s3(size_mb: int, repeat: int) -> None:
    """The production path: chunks PUT straight to S3 (moto_server) with presigned part URLs."""
    moto = start_moto()
    if moto is None:
        print("S3 path: skipped (moto_server is not installed)")
        return
    store, store_url = moto
    extra = {
        "SYNTHEX_S3_BUCKET": "bench",
        "SYNTHEX_S3_ENDPOINT_URL": store_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    var, env, token = bench_instance(
        "synthex-bench-upload-s3-", max(4 * 1024**3, 2 * size_mb * 1024**2), extra
    )
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
        wait_up(port)
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"}, timeout=900
        )
        times: dict[str, list[float]] = {"parts": [], "validate": []}
        for _ in range(repeat):
            warm(source)
            start = time.perf_counter()
            upload = client.post("/api/v1/uploads/", json={"filename": "big.csv", "size": size}).json()
            if upload.get("transport") != "s3":
                raise SystemExit(f"the instance did not hand out part URLs: {upload}")
            put_parts(upload, source)
            client.post(f"/api/v1/uploads/{upload['id']}/complete/").raise_for_status()
            times["parts"].append(time.perf_counter() - start)
            start = time.perf_counter()
            wait_checked(client, upload["id"])
            response = client.post(
                "/api/v1/products/big/versions/", json={"synthetic": [upload["id"]], "submit": False}
            )
            times["validate"].append(time.perf_counter() - start)
            if response.status_code != 201:
                raise SystemExit(f"version failed: {response.status_code} {response.text[:300]}")
        med = {name: statistics.median(values) for name, values in times.items()}
        mb = size / 1e6
        print(f"S3 path (moto_server on loopback, objects in RAM), {mb:,.0f} MB, {repeat} runs, medians")
        print(
            f"presigned parts to the store + complete: {med['parts']:6.2f} s  {mb / med['parts']:7.1f} MB/s"
        )
        print(
            f"worker hash + validation + attach (copy in the store): {med['validate']:6.2f} s  {mb / med['validate']:7.1f} MB/s"
        )
    finally:
        for process in (server, checker, store):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    bench_embedded(size_mb, repeat)
    bench_s3(size_mb, repeat)


def bench_embedded(size_mb: int, repeat: int) -> None:
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
            f"embedded chunked upload API + sync: {med['chunks']:6.2f} s  {mb / med['chunks']:7.1f} MB/s  = {med['cp'] / med['chunks']:.0%} of cp"
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
