"""A bounded load run against a running `assist serve`: N requests to /v1/suggest from C concurrent clients.

    python bench/load.py [--url http://127.0.0.1:8000] [--key dev-key] [--requests 2000] [--concurrency 8]

Conversations come from evals/queries.jsonl (real-looking multi-turn cases), cycled. Prints requests/s,
latency percentiles and errors, and stops by itself (request count and --max-seconds). Loopback only.
"""

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = [
    {"conversation": [{"role": "customer", "text": "退款多久能到账？我是用银行卡付的"}]},
    {"conversation": [{"role": "customer", "text": "快递三天没动了，单号SF1234567890123"}]},
    {"conversation": [{"role": "customer", "text": "我要投诉你们！！再不处理我就打12315"}]},
]


def load_bodies(path: Path) -> list[dict]:
    if not path.is_file():
        return FALLBACK
    bodies = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("conversation"):
            bodies.append({"conversation": row["conversation"], "customer": row.get("customer") or {}})
    return bodies or FALLBACK


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def run_load(url: str, key: str, bodies: list[dict], requests: int, concurrency: int, max_seconds: float,
             warmup: int = 5) -> dict:
    """Closed-loop load: `concurrency` clients send `requests` suggest calls in all (or stop at `max_seconds`)."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []  # client-side seconds per 200 response
    server_ms: list[float] = []  # the pipeline's own timings_ms.total
    errors: dict[str, int] = {}
    versions: set[str] = set()
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
            while time.monotonic() < deadline:
                n = next(counter)
                if n >= requests:
                    return
                start = time.perf_counter()
                try:
                    r = client.post("/v1/suggest", json=bodies[n % len(bodies)])
                    elapsed = time.perf_counter() - start
                    key_ = None if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as exc:
                    elapsed, key_, r = 0.0, type(exc).__name__, None
                with lock:
                    if key_:
                        errors[key_] = errors.get(key_, 0) + 1
                    else:
                        body = r.json()
                        latencies.append(elapsed)
                        server_ms.append(body["timings_ms"]["total"])
                        versions.add(body["index_version"])

    # warm-up: first requests pay for lazy initialisation; not counted
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        for body in bodies[:warmup]:
            c.post("/v1/suggest", json=body).raise_for_status()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done = len(latencies) + sum(errors.values())
    lat = sorted(x * 1000 for x in latencies)
    srv = sorted(server_ms)
    return {
        "requests": done, "concurrency": concurrency, "seconds": round(wall, 2),
        "requests_per_s": round(done / wall, 1) if wall else 0.0,
        "latency_ms": {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
                       "max": lat[-1] if lat else float("nan"), "mean": statistics.fmean(lat) if lat else float("nan")},
        "pipeline_ms": {"p50": percentile(srv, 50), "p95": percentile(srv, 95)},
        "errors": errors, "index_versions": sorted(versions),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--key", default="dev-key", help="X-API-Key")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=300, help="stop early after this long")
    ap.add_argument("--queries", type=Path, default=ROOT / "evals" / "queries.jsonl")
    args = ap.parse_args()
    check_loopback(args.url)
    r = run_load(args.url, args.key, load_bodies(args.queries), args.requests, args.concurrency, args.max_seconds)
    lat, srv, errors = r["latency_ms"], r["pipeline_ms"], r["errors"]
    print(f"{r['requests']} requests, {args.concurrency} clients, {r['seconds']:.1f} s -> {r['requests_per_s']:.1f} requests/s")
    print(f"latency ms (client): p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  "
          f"max {lat['max']:.1f}  mean {lat['mean']:.1f}")
    print(f"pipeline ms (server timings_ms.total): p50 {srv['p50']:.1f}  p95 {srv['p95']:.1f}")
    print(f"errors: {sum(errors.values())} {errors or ''}  index versions: {r['index_versions']}")
    return 1 if errors else 0


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        sys.exit("load runs target this machine only (127.0.0.1, localhost or ::1)")


if __name__ == "__main__":
    sys.exit(main())
