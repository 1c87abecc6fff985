"""Where /v1/suggest's pipeline runs, compared on one worker: requests/s and latency at rising concurrency.

    python bench/suggest_modes.py [--index-dir DIR] [--concurrency 1,2,4,8] [--requests 400] [--rounds 2] [--old SRC]

Starts one-worker `assist serve --no-access-log` servers side by side over a built index (default:
ASSIST_INDEX_DIR, i.e. `assist index build` of the sample KB):
  * `default`: ASSIST_SUGGEST_THREADS=0 (a request alone on the worker runs on the event loop, requests that
    arrive together go to the pipeline's threads);
  * `event loop`: ASSIST_SUGGEST_THREADS=-1 (always on the event loop);
  * with `--old SRC`, `old`: another source tree's default (SRC first on PYTHONPATH).
Each round runs every concurrency level on every server in rotating order (bench/load.py's closed-loop
clients, httpx), so a noisy machine hits all of them alike. Reported per server and level: the median
over rounds of requests/s, client p50 / p95 and the pipeline's own p50 (`timings_ms.total`); with one
client, client p50 minus pipeline p50 estimates the HTTP overhead (bench/http_overhead.py measures it
per request, with a lighter client).
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, loadavg  # noqa: E402
from load import load_bodies, run_load  # noqa: E402
from qps import P95_LIMIT_MS, Server  # noqa: E402

from api.server import free_port  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, default=Path(os.environ.get("ASSIST_INDEX_DIR", ROOT / ".assist" / "index")))
    ap.add_argument("--concurrency", default="1,2,4,8")
    ap.add_argument("--requests", type=int, default=400, help="requests per level, server and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--old", type=Path, help="another source tree whose default to measure beside this one")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    configs = {"default": {"ASSIST_SUGGEST_THREADS": "0"}, "event loop": {"ASSIST_SUGGEST_THREADS": "-1"}}
    if args.old:
        configs["old"] = {"ASSIST_SUGGEST_THREADS": "0", "PYTHONPATH": f"{args.old.resolve()}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    levels = [int(c) for c in args.concurrency.split(",")]
    bodies = load_bodies(ROOT / "evals" / "queries.jsonl")
    servers = {}
    runs: dict[tuple[str, int], list[dict]] = {}
    try:
        for name, env in configs.items():
            servers[name] = Server(args.index_dir, 1, free_port(), env=env)
        for server in servers.values():
            server.wait_ready()
        names = list(servers)
        print(f"load average at start {loadavg()}")
        for rnd in range(args.rounds):
            for c in levels:
                for name in names[rnd % len(names):] + names[: rnd % len(names)]:
                    r = run_load(servers[name].url, "dev-key", bodies, args.requests, c, 60, warmup=10)
                    runs.setdefault((name, c), []).append(r)
                    print(f"  round {rnd + 1} {name:10s} clients {c}: {r['requests_per_s']:6.1f} req/s  p50 {r['latency_ms']['p50']:5.1f}  "
                          f"p95 {r['latency_ms']['p95']:5.1f} ms  pipeline p50 {r['pipeline_ms']['p50']:5.1f}  errors {sum(r['errors'].values())}  "
                          f"load {loadavg()[0]}")
    finally:
        for server in servers.values():
            server.stop()

    def med(rs, f):
        return statistics.median(f(r) for r in rs)

    out = {}
    print(f"\n{'server':10s} {'clients':>7s} {'req/s':>7s} {'p50 ms':>7s} {'p95 ms':>7s} {'pipeline p50':>13s} {'overhead p50':>13s}")
    for (name, c), rs in runs.items():
        row = {"requests_per_s": med(rs, lambda r: r["requests_per_s"]), "p50_ms": med(rs, lambda r: r["latency_ms"]["p50"]),
               "p95_ms": med(rs, lambda r: r["latency_ms"]["p95"]), "pipeline_p50_ms": med(rs, lambda r: r["pipeline_ms"]["p50"]),
               "errors": sum(sum(r["errors"].values()) for r in rs)}
        overhead = f"{row['p50_ms'] - row['pipeline_p50_ms']:10.2f} ms" if c == 1 else ""
        out.setdefault(name, {})[c] = row
        print(f"{name:10s} {c:7d} {row['requests_per_s']:7.1f} {row['p50_ms']:7.1f} {row['p95_ms']:7.1f} {row['pipeline_p50_ms']:10.1f} ms {overhead}")
    for name, rows in out.items():
        ok = [r["requests_per_s"] for r in rows.values() if r["p95_ms"] < P95_LIMIT_MS and not r["errors"]]
        one = rows.get(1)
        bound = f", 1 / pipeline p50 (1 client) {1000 / one['pipeline_p50_ms']:.1f}" if one else ""
        print(f"{name}: best requests/s at p95 < {P95_LIMIT_MS:.0f} ms: {max(ok) if ok else 0:.1f}{bound}")
    print(f"load average at end {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
