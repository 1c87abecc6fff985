"""Requests/s that `assist serve` sustains at p95 < 50 ms, with 1 and 2 worker processes.

    python bench/qps.py [--size 10k] [--workers 1,2,2n] [--concurrency 1,2,3,4,6,8] [--requests 500] [--max-seconds 20]

Starts `assist serve --dev --no-access-log` on a free port of 127.0.0.1 over a cached benchmark index
(bench/corpus.py), waits until every worker has loaded, then runs bench/load.py's closed-loop load at
each concurrency: a fixed number of requests per level, each level stopped by --max-seconds too, the
conversations of evals/queries.jsonl cycled. The best requests/s whose client-side p95 stays under
50 ms is the result; the server is stopped at the end (SIGTERM to the process this script started).
The load generator runs on the same 2-core machine and takes CPU from the server (about a millisecond
per request in httpx + JSON): the numbers are conservative.

With 2 workers the processes share one listening socket that `assist serve` binds as TCP itself
(api/server.py): uvicorn's own multi-worker socket loses TCP_NODELAY and every keep-alive request then
waits ~40 ms on a delayed ACK.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from common import ROOT, loadavg  # noqa: E402
from load import check_loopback, load_bodies, run_load  # noqa: E402

from api.server import free_port  # noqa: E402

P95_LIMIT_MS = 50.0


class Server:
    """One `assist serve` process group started by this script, stopped by its own pid."""

    def __init__(self, index_dir: Path, workers: int, port: int, env: dict | None = None, access_log: bool = False):
        self.url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self._tmp = tempfile.TemporaryDirectory(prefix="assist-qps-")
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "ASSIST_EMBEDDING__THREADS": "1", "ASSIST_LOG_LEVEL": "INFO",
                    "ASSIST_INDEX_DIR": str(index_dir), "ASSIST_FEEDBACK_DB": str(Path(self._tmp.name) / "feedback.db"),
                    **(env or {})}
        # The access log (stdout) goes to a file, as a deployment's would: what writing it costs is counted.
        self._stdout = open(Path(self._tmp.name) / "access.log", "wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "assist"), "serve", "--dev", "--access-log" if access_log else "--no-access-log",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT, env=full_env, stdout=self._stdout, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        self.started = 0
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
            if "Application startup complete" in line:
                self.started += 1

    def wait_ready(self, timeout: float = 180) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("assist serve exited:\n" + "\n".join(self.log[-30:]))
            if self.started >= self.workers:
                try:
                    if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                        return time.monotonic() - start
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("assist serve did not become ready:\n" + "\n".join(self.log[-30:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # uvicorn shuts its workers down
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script created, nothing else
                self.proc.wait(5)
        self._stdout.close()
        self._tmp.cleanup()


def measure(index_dir: Path, workers: int, concurrencies: list[int], requests: int, max_seconds: float,
            env: dict | None = None, log=print) -> dict:
    server = Server(index_dir, workers, free_port(), env)
    try:
        ready_s = server.wait_ready()
        check_loopback(server.url)
        bodies = load_bodies(ROOT / "evals" / "queries.jsonl")
        levels = []
        for c in concurrencies:
            r = run_load(server.url, "dev-key", bodies, requests, c, max_seconds, warmup=10)
            r["loadavg"] = loadavg()
            levels.append(r)
            log(f"  workers {workers} clients {c:2d}: {r['requests_per_s']:7.1f} req/s  p50 {r['latency_ms']['p50']:6.1f}  "
                f"p95 {r['latency_ms']['p95']:6.1f} ms  pipeline p50 {r['pipeline_ms']['p50']:5.1f}  "
                f"errors {sum(r['errors'].values())}  load {r['loadavg'][0]}")
            if r["latency_ms"]["p95"] > 2 * P95_LIMIT_MS:
                break  # saturated well past the limit: more clients only queue
    finally:
        server.stop()
    ok = [r for r in levels if r["latency_ms"]["p95"] < P95_LIMIT_MS and not r["errors"]]
    best = max(ok, key=lambda r: r["requests_per_s"]) if ok else None
    return {
        "workers": workers, "ready_seconds": round(ready_s, 1), "levels": levels,
        "requests_per_s_at_p95_lt_50ms": best["requests_per_s"] if best else 0.0,
        "best_concurrency": best["concurrency"] if best else None,
        "per_process": round(best["requests_per_s"] / workers, 1) if best else 0.0,
    }


def main() -> None:
    from corpus import ensure_index, index_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="10k")
    ap.add_argument("--workers", default="1,2", help="worker counts")
    ap.add_argument("--concurrency", default="1,2,3,4,6,8")
    ap.add_argument("--requests", type=int, default=500, help="requests per concurrency level")
    ap.add_argument("--max-seconds", type=float, default=20, help="cap per concurrency level")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ensure_index(args.size)
    out = {}
    for name in args.workers.split(","):
        w = int(name)
        print(f"assist serve --workers {w} over the {args.size} index:")
        out[name] = measure(index_dir(args.size), w, [int(c) for c in args.concurrency.split(",")], args.requests,
                            args.max_seconds)
        print(f"  -> {out[name]['requests_per_s_at_p95_lt_50ms']} req/s at p95 < 50 ms "
              f"({out[name]['per_process']} per process, {out[name]['best_concurrency']} clients)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
