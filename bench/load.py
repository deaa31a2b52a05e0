"""Load on gunicorn with wrk: catalog search (API and page), product page and Stripe webhook ingestion at 50
concurrent connections, on SQLite and on PostgreSQL; prints requests/s and p95 latency per scenario.

    .venv/bin/python bench/load.py [--seconds 5] [--repeats 3] [--connections 50] [--backends sqlite,postgres]

Each backend gets a fresh database with 200 certified, published products (certificates signed for real,
engine figures fixed; the search API must list full pages of them before anything is measured), one paid
order whose success webhook is replayed (the idempotent path every redelivery takes), and gunicorn from
deploy/gunicorn.conf.py with 2 workers x 4 threads (production-like: DEBUG off). PostgreSQL comes from
scripts/services.sh (started and stopped here). wrk runs on the same machine and takes CPU from the server,
and the host may be shared: every figure is the median of ``--repeats`` interleaved runs and is printed beside
the reference measured in the same rounds (the cached catalog page), so a busy host shows in both.
Every scenario is warmed up first, unmeasured (8 s for the first, 2 s for the others): caches filled, every
worker serving. The API reads are measured anonymously and with an API token (the CLI's way), and once
with a query string of its own per request: every one a cache miss (printed, not held to the target).
Needs Debian's `wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv/bin"
WEBHOOK_SECRET = "whsec_bench_load"
P95_TARGET_MS = 200.0

SEED = r"""
import hashlib, json, time, hmac
from decimal import Decimal
from django.conf import settings
from django.utils import timezone
from marketplace.accounts.services import api_token_for
from marketplace.accounts.models import User
from marketplace.accounts.services import create_organization
from marketplace.catalog import services
from marketplace.catalog.models import ProductVersion, VersionFile
from marketplace.certification.services import issue_certificate

owner = User.objects.create_user(username="bench-provider", password="bench-password-1")
org = create_organization(owner=owner, name="Bench Provider", is_provider=True)
evaluation = {
    "quality": {"score": 0.91, "grade": "A", "column_shapes": 0.93, "column_pair_trends": 0.89},
    "plausibility": {"score": 1.0, "grade": "A", "rows_violating_any": 0.0, "holdout_rows_violating_any": 0.0, "rules": []},
    "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.5},
    "charts": {}, "parameters": {}, "engine": {"name": "synthex-certify", "version": "bench"},
}
domains = ["census", "health", "finance", "retail", "energy"]
slugs = []
for n in range(200):
    product = services.create_product(
        user=owner, organization=org, title=f"Synthetic {domains[n % 5]} table {n}",
        summary=f"Rows like {domains[n % 5]} records, number {n}.", domain=domains[n % 5],
        licenses=[services.LicensePrice("standard", 1000 + n, "USD")],
    )
    version = ProductVersion.objects.create(
        product=product, number=1, status="certifying", created_by=owner, submitted_at=timezone.now()
    )
    synthetic = VersionFile.objects.create(
        version=version, role="synthetic", table_name="people", original_filename="people.csv", format="csv",
        storage_name=f"bench/people-{n}.csv", sha256=hashlib.sha256(str(n).encode()).hexdigest(),
        size_bytes=100, rows=10, column_count=3,
    )
    issue_certificate(version, json.loads(json.dumps(evaluation)), [synthetic])
    slugs.append(product.slug)
print(json.dumps({"slugs": slugs, "token": api_token_for(owner)}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def webhook_body_and_header() -> tuple[str, str]:
    """A signed event for an unknown payment intent: verified, recorded once, answered from the event table."""
    import hashlib
    import hmac

    body = json.dumps(
        {
            "id": "evt_bench_replay",
            "object": "event",
            "type": "charge.updated",
            "created": int(time.time()),
            "data": {"object": {"id": "ch_bench", "object": "charge"}},
            "api_version": "2017-08-15",
        }
    )
    moment = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{moment}.{body}".encode(), hashlib.sha256).hexdigest()
    return body, f"t={moment},v1={signature}"


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> tuple[float, float, int]:
    """Returns (requests/s, p95 in ms, non-2xx responses)."""
    lua = script.read_text() if script else ""
    lua += (
        "\ndone = function(summary, latency, requests)\n"
        '  io.write(string.format("P95_US %d\\nERRORS %d\\n", latency:percentile(95), '
        "summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write "
        "+ summary.errors.timeout))\nend\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(lua)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", handle.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(handle.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p95 = int(re.search(r"P95_US (\d+)", out).group(1)) / 1000  # type: ignore[union-attr]
    errors = int(re.search(r"ERRORS (\d+)", out).group(1))  # type: ignore[union-attr]
    return rps, p95, errors


REFERENCE = "catalog page (cached)"
MISS = "catalog search (API, all miss)"


def scenarios(base: str, folder: Path, slugs: list[str], token: str) -> list[tuple[str, str, Path | None]]:
    """(label, url, wrk script): the reference first, then the API reads anonymously and with a token (the
    CLI's way: a signed-in read), the product page and the webhook replay."""
    body, signature = webhook_body_and_header()
    product_paths = ", ".join(f'"/products/{slug}/"' for slug in slugs[:50])
    (folder / "product.lua").write_text(
        f"local paths = {{{product_paths}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"
    )
    (folder / "webhook.lua").write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Stripe-Signature"] = "{signature}"\n'
    )
    (folder / "token.lua").write_text(f'wrk.headers["Authorization"] = "Token {token}"\n')
    # A query string of its own for every request (an ignored parameter): the cost of a cache miss.
    (folder / "miss.lua").write_text(
        "local threads = 0\nsetup = function(thread)\n  threads = threads + 1\n  thread:set('id', threads)\nend\n"
        "local i = 0\nrequest = function()\n  i = i + 1\n"
        "  return wrk.format('GET', '/api/v1/products/?q=census&miss=' .. id .. '-' .. i)\nend\n"
    )
    import httpx

    first = httpx.post(
        f"{base}/api/v1/stripe/webhook/",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
    )
    if first.status_code != 200:
        raise RuntimeError(f"webhook refused: {first.status_code} {first.text[:200]}")
    listed = httpx.get(f"{base}/api/v1/products/?q=census").json()
    if (
        listed["count"] != len(slugs) // 5 or len(listed["results"]) != 20
    ):  # measure full pages, not an empty list
        raise RuntimeError(f"the search API does not list the seeded products: {str(listed)[:200]}")
    return [
        (REFERENCE, f"{base}/?q=finance", None),
        ("products list (API)", f"{base}/api/v1/products/", None),
        ("catalog search (API)", f"{base}/api/v1/products/?q=census", None),
        ("products list (API, token)", f"{base}/api/v1/products/", folder / "token.lua"),
        ("catalog search (API, token)", f"{base}/api/v1/products/?q=census", folder / "token.lua"),
        (MISS, base, folder / "miss.lua"),
        ("product page", base, folder / "product.lua"),
        ("webhook ingestion (replay)", f"{base}/api/v1/stripe/webhook/", folder / "webhook.lua"),
    ]


def run_backend(
    name: str, env: dict[str, str], seconds: int, connections: int, repeats: int
) -> list[tuple[str, float, float, int]]:
    """Median requests/s and p95 per scenario over ``repeats`` rounds. Rounds interleave the scenarios, so a
    burst of load from elsewhere on the host falls on all of them alike, the reference included."""
    python = str(VENV / "python")
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True)
    seeded = subprocess.run(
        [python, "manage.py", "shell", "-c", SEED],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = free_port()
    server = subprocess.Popen(
        [str(VENV / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "marketplace.wsgi"],
        cwd=REPO,
        env={**env, "SYNTHEX_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="synthex-load-"))
    runs: dict[str, list[tuple[float, float, int]]] = {}
    try:
        wait_http(f"{base}/healthz")
        plan = scenarios(base, folder, seed["slugs"], seed["token"])
        for number, (_label, url, script) in enumerate(plan):
            # Warm-up, not measured: caches filled, and (first, longer) every worker done importing its views.
            wrk(url, 2 if number else 8, connections, script)
        for _round in range(repeats):
            for label, url, script in plan:
                runs.setdefault(label, []).append(wrk(url, seconds, connections, script))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    results = []
    reference_p95 = statistics.median(p95 for _rps, p95, _errors in runs[REFERENCE])
    for label, measured in runs.items():
        rps = statistics.median(r for r, _p95, _errors in measured)
        p95 = statistics.median(p for _rps, p, _errors in measured)
        errors = sum(e for _rps, _p95, e in measured)
        each = " ".join(f"{p:.0f}" for _rps, p, _errors in measured)
        print(
            f"{name:9} {label:28} {rps:8.1f} req/s   p95 {p95:7.1f} ms ({p95 / reference_p95:4.1f}x reference;"
            f" each {each})   non-2xx/errors {errors}",
            flush=True,
        )
        results.append((label, rps, p95, errors))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per measured run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario; medians are printed")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    print(
        f"{os.cpu_count()} CPU cores; {args.connections} connections; medians of {args.repeats} runs of"
        f" {args.seconds} s per scenario; reference: {REFERENCE}"
    )
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CELERY_", "SYNTHEX_S3", "DJANGO_"))
    }
    base_env.update(
        {
            "DJANGO_SETTINGS_MODULE": "marketplace.settings",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PYTHONPATH": str(REPO),
            "DB_CONN_MAX_AGE": "60",  # as in production: no new connection per request
        }
    )
    slow = []
    for backend in args.backends.split(","):
        var = tempfile.mkdtemp(prefix=f"synthex-load-{backend}-")
        env = {**base_env, "SYNTHEX_VAR_DIR": var}
        started = False
        try:
            if backend == "postgres":
                ports = {
                    "SYNTHEX_IT_PG_PORT": "54339",
                    "SYNTHEX_IT_REDIS_PORT": "63809",
                    "SYNTHEX_IT_S3_PORT": "59109",
                }
                env.update(ports)
                exports = subprocess.run(
                    ["bash", "scripts/services.sh", "start"],
                    cwd=REPO,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                started = True
                url = re.search(r"DATABASE_URL=(\S+)", exports).group(1)  # type: ignore[union-attr]
                env["DATABASE_URL"] = url.replace("/synthex", "/synthex_load")
                subprocess.run(
                    [
                        "runuser",
                        "-u",
                        "postgres",
                        "--",
                        "psql",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        ports["SYNTHEX_IT_PG_PORT"],
                        "-U",
                        "postgres",
                        "-qc",
                        "CREATE DATABASE synthex_load",
                    ],
                    check=True,
                )
            for label, _rps, p95, _errors in run_backend(
                backend, env, args.seconds, args.connections, args.repeats
            ):
                # A storm of distinct searches is printed for what it costs, not held to the cached target.
                if ("page" in label or "API" in label) and label != MISS and p95 >= P95_TARGET_MS:
                    slow.append(f"{backend} {label}")
        finally:
            if started:
                subprocess.run(["bash", "scripts/services.sh", "stop"], cwd=REPO, env=env, check=False)
            shutil.rmtree(var, ignore_errors=True)
    print(f"pages and API reads over the {P95_TARGET_MS:.0f} ms p95 target: {', '.join(slow) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
