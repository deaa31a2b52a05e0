"""Download benchmark: streaming throughput and memory of the download route, concurrency, conversion.

Usage: python bench/download.py [SIZE_MB] [CONCURRENT] [CONVERT_ROWS]    (default 1024 MB, 50, 1,000,000)

In a temporary var dir: a migrated SQLite database, a buyer with an entitlement and a delivered copy of
SIZE_MB bytes (written straight into storage, so the figure is the serving path, not the conversion),
and gunicorn as in the Procfile (2 workers of 4 threads). Measures, in the same run:
- ``cat FILE > /dev/null`` and full downloads through the signed link (medians of 3), with the file in the
  page cache (warm) and evicted before each read (cold, bench/_pagecache.py), read by curl, by a raw socket
  reader (the figure of the server: curl itself tops out first on loopback) and by httpx,
  reading the body as it streams; the ratio must be at least 0.70;
- the peak RSS (VmHWM) of the worker that served the downloads;
- CONCURRENT simultaneous downloads (one per buyer: the rate limit is per user) of the first 16 MB
  (Range) each, all 206;
- Parquet → CSV conversion with fingerprinting of CONVERT_ROWS rows (adult rows repeated) via
  ``exchange.downloads.formats.convert``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3
import httpx
from _pagecache import evict, warm

from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[1]
ADULT = adult_csv()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(size_mb: int, buyers: int) -> tuple[list[tuple[str, str]], str, str]:
    """Create ``buyers`` buyers, each with an entitlement and a delivered copy (the same stored file of
    ``size_mb`` MB); returns ([(api token, link token)], path, sha)."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from exchange.delivery.services import grant_entitlement
    from exchange.downloads import services
    from exchange.downloads.models import Delivery
    from marketplace.accounts.models import User
    from marketplace.accounts.services import api_token_for, create_organization
    from marketplace.catalog import services as catalog
    from marketplace.catalog.models import ProductVersion, VersionFile

    owner = User.objects.create_user("bench-provider", email="p@bench.test", password="x" * 12)
    organization = create_organization(owner=owner, name="Bench", is_provider=True)
    product = catalog.create_product(
        user=owner,
        organization=organization,
        title="Bench",
        summary="bench",
        domain="other",
        licenses=[catalog.LicensePrice("standard", 100, "USD")],
    )
    version = ProductVersion.objects.create(product=product, number=1, status="certified", created_by=owner)
    name = "deliveries/bench.csv"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    block = ADULT.read_bytes()
    digest, transfer_digest = hashlib.sha256(), blake3.blake3()
    with path.open("wb") as handle:
        written = 0
        while written < size_mb << 20:
            piece = block[: (size_mb << 20) - written]
            handle.write(piece)
            digest.update(piece)
            transfer_digest.update(piece)
            written += len(piece)
    sha = digest.hexdigest()
    version_file = VersionFile.objects.create(
        version=version,
        role="synthetic",
        table_name="bench",
        original_filename="bench.csv",
        format="csv",
        storage_name="objects/bench.csv",
        sha256=sha,
        size_bytes=written,
        rows=0,
        column_count=15,
    )
    links = []
    for number in range(buyers):
        buyer = User.objects.create_user(
            f"bench-buyer{number}", email=f"b{number}@bench.test", password="x" * 12
        )
        entitlement = grant_entitlement(
            buyer=buyer, version=version, license_code="standard", source=f"bench:{number}"
        )
        delivery = Delivery.objects.create(
            id=f"dlv_bench{number}",
            fingerprint=services.fingerprint_for(entitlement),
            entitlement=entitlement,
            version_file=version_file,
            format="csv",
            source_sha256=sha,
            sha256=sha,
            blake3=transfer_digest.hexdigest(),
            size_bytes=written,
            rows=0,
            storage_name=name,
            plan={},
            receipt={},
            ledger_index=0,
            created_at=timezone.now(),
        )
        links.append((api_token_for(buyer), services.issue_link(delivery, buyer).token))
    return links, str(path), sha


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _raw_get(port: int, url: str, token: str, size: int) -> None:
    """Read a download with one HTTP/1.1 request over a plain socket into a 4 MiB buffer, discarding it:
    the least a client can do, so the figure is the server's (curl reads 16 KiB at a time and is the
    bottleneck on loopback)."""
    path = url.split(str(port), 1)[1]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        buffer = bytearray(4 << 20)
        received = sock.recv_into(buffer)
        head_end = bytes(buffer[:received]).find(b"\r\n\r\n")
        assert buffer.startswith(b"HTTP/1.1 200"), bytes(buffer[:80])
        total = received - head_end - 4
        while count := sock.recv_into(buffer):
            total += count
    assert total == size, (total, size)


class SendfileServer:
    """The floor of any HTTP file server: answers each connection with a bare 200 and ``sendfile`` of one
    file, no routing, checks or logging. Timed in the same run, it says what loopback TCP plus ``sendfile``
    can do on this machine, the ceiling for the download route."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            connection, _ = self.sock.accept()
            with connection, self.path.open("rb") as handle:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                size = self.path.stat().st_size
                connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                connection.sendfile(handle)


def _worker_memory_mb(pid: int, field: str) -> float:
    """The largest ``field`` (VmHWM: peak RSS, VmRSS: current) among the server's worker processes, in MB."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    values = []
    for child in children:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                values.append(int(line.split()[1]) / 1024)
    return max(values) if values else float("nan")


def _convert(rows: int) -> float:
    import pandas as pd

    from exchange.downloads import fingerprint as fp
    from exchange.downloads.formats import convert, plan_file

    with tempfile.TemporaryDirectory() as folder:
        adult = pd.read_csv(ADULT)
        frame = pd.concat([adult] * (rows // len(adult) + 1), ignore_index=True).head(rows)
        source = Path(folder) / "source.parquet"
        frame.to_parquet(source, index=False, row_group_size=65_536)
        del frame, adult
        started = time.perf_counter()
        plan = plan_file(source, "parquet")
        convert(
            source, "parquet", Path(folder) / "out.csv", "csv", plan=plan, key=fp.fingerprint_key(b"b", "x")
        )
        return time.perf_counter() - started


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    concurrent = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    convert_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    var = tempfile.mkdtemp(prefix="synthex-bench-download-")
    env = {
        **os.environ,
        "SYNTHEX_VAR_DIR": var,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    links, path, sha = _prepare(size_mb, concurrent)
    token, link_token = links[0]
    port = _free_port()
    server = subprocess.Popen(
        [
            str(REPO / ".venv/bin/gunicorn"),
            "marketplace.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--timeout",
            "600",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/v1/downloads/{link_token}/"
    headers = {"Authorization": f"Token {token}"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for api_token, their_link in links[:4]:
            first = httpx.get(
                f"{base}/api/v1/downloads/{their_link}/",
                headers={"Authorization": f"Token {api_token}", "Range": "bytes=0-0"},
                timeout=60,
            )
            assert first.status_code == 206, first.status_code
        baseline = _worker_memory_mb(server.pid, "VmHWM")
        names = ("cat", "curl", "raw", "floor", "httpx", "cold_cat", "cold_raw", "cold_floor")
        times: dict[str, list[float]] = {name: [] for name in names}
        file = Path(path)
        floor = SendfileServer(file)
        floor_url = f"http://127.0.0.1:{floor.port}/file"
        for run in range(5):
            # Warm: the file sits in the page cache (as a popular file does); each reader is timed alone.
            warm(file)
            times["cat"].append(
                _timed(lambda: subprocess.run(f"cat {path} > /dev/null", shell=True, check=True))
            )
            times["curl"].append(
                _timed(
                    lambda: subprocess.run(
                        ["curl", "-sf", "-o", "/dev/null", "-H", f"Authorization: Token {token}", url],
                        check=True,
                    )
                )
            )
            times["raw"].append(_timed(lambda: _raw_get(port, url, token, size_mb << 20)))
            times["floor"].append(_timed(lambda: _raw_get(floor.port, floor_url, token, size_mb << 20)))
            digest = hashlib.sha256() if run == 0 else None
            started = time.perf_counter()
            with httpx.stream("GET", url, headers=headers, timeout=600) as response:
                assert response.status_code == 200, response.status_code
                for chunk in response.iter_raw(1 << 20):
                    if digest is not None:
                        digest.update(chunk)
            times["httpx"].append(time.perf_counter() - started)
            if digest is not None:
                assert digest.hexdigest() == sha
            # Cold: the file evicted from the page cache before each reader, which then reads the disk.
            evict([file])
            times["cold_cat"].append(
                _timed(lambda: subprocess.run(f"cat {path} > /dev/null", shell=True, check=True))
            )
            evict([file])
            times["cold_raw"].append(_timed(lambda: _raw_get(port, url, token, size_mb << 20)))
            evict([file])
            times["cold_floor"].append(_timed(lambda: _raw_get(floor.port, floor_url, token, size_mb << 20)))
        size = size_mb << 20
        rate = {name: size / statistics.median(values) / 2**20 for name, values in times.items()}

        def ranged(number: int) -> int:
            api_token, their_link = links[number]
            response = httpx.get(
                f"{base}/api/v1/downloads/{their_link}/",
                headers={"Authorization": f"Token {api_token}", "Range": "bytes=0-16777215"},
                timeout=600,
            )
            assert len(response.content) == min(size, 16 << 20)
            return response.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as pool:
            statuses = list(pool.map(ranged, range(concurrent)))
        concurrent_seconds = time.perf_counter() - started
        rss = _worker_memory_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)
    conversion = _convert(convert_rows)
    print(f"file: {size_mb} MB")
    print("throughput, medians of 5 (MB/s):")
    print(f"  warm (file in the page cache): cat > /dev/null {rate['cat']:,.0f}")
    print(
        f"    download read by curl -o /dev/null    {rate['curl']:,.0f} = {rate['curl'] / rate['cat']:.2f} of cat"
    )
    print(
        f"    download read by a raw socket reader  {rate['raw']:,.0f} = {rate['raw'] / rate['cat']:.2f} of cat"
    )
    print(
        f"    download read by httpx (Python)       {rate['httpx']:,.0f} = {rate['httpx'] / rate['cat']:.2f} of cat"
    )
    print(
        f"    bare sendfile server, raw reader      {rate['floor']:,.0f} = {rate['floor'] / rate['cat']:.2f} of cat"
    )
    print(f"    download route / bare sendfile server {rate['raw'] / rate['floor']:.2f}")
    print(f"  cold (evicted before each read): cat > /dev/null {rate['cold_cat']:,.0f}")
    print(
        f"    download read by a raw socket reader  {rate['cold_raw']:,.0f} = "
        f"{rate['cold_raw'] / rate['cold_cat']:.2f} of cat (target >= 0.70)"
    )
    print(
        f"    bare sendfile server, raw reader      {rate['cold_floor']:,.0f} = "
        f"{rate['cold_floor'] / rate['cold_cat']:.2f} of cat"
    )
    print(f"    download route / bare sendfile server {rate['cold_raw'] / rate['cold_floor']:.2f}")
    print(
        f"serving worker RSS: {baseline:.0f} MB after start-up and warm-up, peak {rss:.0f} MB after all "
        f"downloads: +{rss - baseline:.0f} MB while serving (target: peak <= 100 MB)"
    )
    print(
        f"{concurrent} concurrent 16 MB ranged downloads (one per buyer): {statuses.count(206)} x 206 "
        f"in {concurrent_seconds:.1f} s"
    )
    print(f"Parquet -> CSV with fingerprint, {convert_rows} rows: {conversion:.1f} s (target <= 10)")


if __name__ == "__main__":
    main()
