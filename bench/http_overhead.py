"""What one `/v1/suggest` request costs on top of the pipeline: client latency minus `timings_ms.total`.

    python bench/http_overhead.py [--index-dir DIR] [--rounds 5] [--requests 100] [--old SRC] [--new SRC] [--no-floor] [--event-loop]

Starts `assist serve --workers 1` on free ports of 127.0.0.1 over a built index (default: ASSIST_INDEX_DIR,
i.e. `assist index build` of the sample KB), once with the access log and once with `--no-access-log`;
with `--old SRC` the same two again from another source tree (SRC first on PYTHONPATH, e.g. a copy of
the working tree with the files under test as committed), and a bare ASGI app under the same uvicorn
(httptools + uvloop) as the floor of this client and machine. All servers run side by side; each round
sends every server, in rotating order, a `/healthz` and then `--requests` suggest requests on its own
keep-alive connection (http.client: the client's own cost stays small), the conversations of
evals/queries.jsonl cycled. Per request, overhead = client-measured latency - the response's
`timings_ms.total`; reported: the median of the round medians (and their range), with client latency
and pipeline time the same way. The access log goes to a file, as a deployment's would.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, loadavg  # noqa: E402
from load import load_bodies  # noqa: E402
from qps import Server  # noqa: E402

from api.server import free_port  # noqa: E402

BARE_BODY = json.dumps({"timings_ms": {"total": 0.0}}).encode()


async def bare_app(scope, receive, send):
    """The floor: an ASGI app that reads the body and answers a fixed JSON, nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BARE_BODY)).encode())]})
    await send({"type": "http.response.body", "body": BARE_BODY})


class BareServer(Server):
    """uvicorn serving `bare_app` (same uvicorn settings as `assist serve`: httptools, uvloop, no access log)."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.workers = 1
        self._tmp = tempfile.TemporaryDirectory(prefix="assist-bare-")
        self._stdout = open(Path(self._tmp.name) / "out.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "http_overhead:bare_app", "--app-dir", str(Path(__file__).parent),
             "--host", "127.0.0.1", "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log"],
            cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=self._stdout, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        self.started = 0
        self.log: list[str] = []
        import threading

        threading.Thread(target=self._read, daemon=True).start()

    def wait_ready(self, timeout: float = 30) -> float:
        start = time.monotonic()
        while self.started < 1:
            if self.proc.poll() is not None or time.monotonic() - start > timeout:
                raise RuntimeError("bare uvicorn did not start:\n" + "\n".join(self.log[-30:]))
            time.sleep(0.1)
        return time.monotonic() - start


class Client:
    """One keep-alive connection; `suggest` returns (client ms, the pipeline's timings_ms.total)."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.conn.connect()
        self.headers = {"X-API-Key": "dev-key", "Content-Type": "application/json"}

    def get(self, path: str, reconnect: bool = False) -> None:
        if reconnect:  # uvicorn closes a keep-alive connection idle for 5 s (the other servers' turns)
            self.conn.close()
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status}")

    def suggest(self, body: bytes) -> tuple[float, float]:
        start = time.perf_counter()
        self.conn.request("POST", "/v1/suggest", body, self.headers)
        r = self.conn.getresponse()
        data = r.read()
        elapsed = (time.perf_counter() - start) * 1000
        if r.status != 200:
            raise RuntimeError(f"POST /v1/suggest: {r.status} {data[:300]!r}")
        return elapsed, json.loads(data)["timings_ms"]["total"]


def summary(rounds: list[list[tuple[float, float]]]) -> dict:
    def per_round(f):
        meds = [statistics.median(f(c, p) for c, p in r) for r in rounds]
        return {"median": round(statistics.median(meds), 3), "range": [round(min(meds), 3), round(max(meds), 3)]}

    return {"overhead_ms": per_round(lambda c, p: c - p), "client_ms": per_round(lambda c, p: c),
            "pipeline_ms": per_round(lambda c, p: p), "requests": sum(len(r) for r in rounds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, default=Path(os.environ.get("ASSIST_INDEX_DIR", ROOT / ".assist" / "index")))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100, help="suggest requests per round and server")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--old", type=Path, help="another source tree to measure beside this one (put first on PYTHONPATH)")
    ap.add_argument("--new", type=Path, help="measure this source tree instead of the working tree (same way)")
    ap.add_argument("--no-floor", action="store_true", help="leave out the bare ASGI app")
    ap.add_argument("--event-loop", action="store_true", help="also this tree with ASSIST_SUGGEST_THREADS=-1 (no access log)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    trees = [("new", args.new.resolve() if args.new else None)] + ([("old", args.old.resolve())] if args.old else [])
    servers: dict[str, Server] = {}
    try:
        for name, src in trees:
            env = {"PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"} if src else None
            servers[name] = Server(args.index_dir, 1, free_port(), env=env, access_log=True)
            servers[f"{name} --no-access-log"] = Server(args.index_dir, 1, free_port(), env=env, access_log=False)
        if args.event_loop:
            servers["new, threads -1, --no-access-log"] = Server(args.index_dir, 1, free_port(), env={"ASSIST_SUGGEST_THREADS": "-1"},
                                                                access_log=False)
        if not args.no_floor:
            servers["bare ASGI app"] = BareServer(free_port())
        for server in servers.values():
            server.wait_ready()
        bodies = [json.dumps(b, ensure_ascii=False).encode() for b in load_bodies(ROOT / "evals" / "queries.jsonl")]
        clients = {name: Client(s.url) for name, s in servers.items()}
        for c in clients.values():
            for body in bodies[: args.warmup]:
                c.suggest(body)
        results: dict[str, list] = {name: [] for name in servers}
        names = list(servers)
        n = 0
        print(f"load average at start {loadavg()}")
        for rnd in range(args.rounds):
            for name in names[rnd % len(names):] + names[: rnd % len(names)]:  # rotate who goes first
                c = clients[name]
                c.get("/healthz", reconnect=True)
                samples = []
                for _ in range(args.requests):
                    samples.append(c.suggest(bodies[n % len(bodies)]))
                    n += 1
                results[name].append(samples)
            print(f"  round {rnd + 1}/{args.rounds} done, load {loadavg()}")
    finally:
        for server in servers.values():
            server.stop()
    out = {name: summary(rounds) for name, rounds in results.items()}
    print(f"\n{'server':28s} {'overhead p50':>14s} {'(round range)':>16s} {'client p50':>11s} {'pipeline p50':>13s}")
    for name, r in out.items():
        o = r["overhead_ms"]
        print(f"{name:28s} {o['median']:11.2f} ms   {o['range'][0]:5.2f}-{o['range'][1]:5.2f} ms "
              f"{r['client_ms']['median']:8.2f} ms {r['pipeline_ms']['median']:10.2f} ms")
    print(f"load average at end {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
