"""A bounded load run through the loopback cluster (3 replicas + nginx + PostgreSQL) while it is disturbed.

    python bench/cluster_load.py [--fake] [--requests 5000] [--concurrency 16] [--json OUT]
    python bench/cluster_load.py --url http://127.0.0.1:PORT [--dir .assist/cluster]   (a running `make cluster`)

Without --url it starts a cluster (scripts/cluster.py, the code behind scripts/cluster.sh) in a temp folder on
a copy of the index store: the real model on .assist/index's CURRENT version, or with --fake the hashing
embedder on the tests' tiny KB. C keep-alive clients send at least N requests through nginx: mostly POST /v1/suggest,
every --feedback-every-th a POST /v1/feedback with a fresh event_id, and some feedback re-sent with an
event_id already stored (it must come back `duplicate`). At --publish-at of the requests a new index version
is built into the shared index folder (`assist index build`: CURRENT flips); at --kill-at one replica is
SIGKILLed and restarted 3 s later; the clients go on until both the count and these events (and 3 s after the
restart) are done. With --url the new version goes into that cluster's index folder.

Targets (exit code 1 when one fails): no failed request (a non-2xx answer or a transport error at the client),
feedback rows in PostgreSQL = unique event_ids sent (exactly once), every replica serving the new version
(the `serving_since` of its /readyz) within the poll interval + --swap-margin seconds of CURRENT's change,
the killed replica ready again and served requests afterwards.
"""

import argparse
import itertools
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import check_loopback, load_bodies, percentile  # noqa: E402

from scripts.cluster import BIN, Cluster, ClusterError  # noqa: E402


@dataclass(frozen=True)
class Plan:
    requests: int = 5000
    concurrency: int = 16
    feedback_every: int = 8  # every 8th request is a feedback post ...
    resend_every: int = 5  # ... and every 5th of those re-sends an event_id already stored
    publish_at: float = 0.2  # fraction of the requests done when the new index version is published
    kill_at: float = 0.45  # ... and when one replica is SIGKILLed
    kill_replica: int = 1
    down_seconds: float = 3.0  # the killed replica is started again this long after the kill
    swap_margin: float = 0.0  # allowed beyond the poll interval for every replica to serve the new version
    tail_seconds: float = 3.0  # the load goes on this long after the restarted replica is ready
    max_seconds: float = 900  # stop sending after this long, whatever the count


@dataclass
class _Shared:
    """What the client threads record (under `lock`)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    records: list = field(default_factory=list)  # (start monotonic, kind, ok, latency s, index_version)
    failures: Counter = field(default_factory=Counter)
    failure_samples: list = field(default_factory=list)
    unique_ids: set = field(default_factory=set)
    stored_ids: list = field(default_factory=list)
    feedback_posts: int = 0
    resent: int = 0
    resent_not_duplicate: int = 0
    first_answered_duplicate: int = 0  # a first POST answered `duplicate`: nginx retried it after a replica stored it


def run_cluster_load(cluster: Cluster, bodies: list[dict], publish: Callable[[], str], plan: Plan = Plan(),
                     progress: Callable[[str], None] = print) -> dict:
    """Drive `plan` through `cluster.url`; `publish` builds a new index version (flipping CURRENT) and returns its name.
    The figures as a plain dict; its "targets" say which goals were met."""
    run = "cl" + secrets.token_hex(4)
    shared = _Shared()
    counter = itertools.count()
    deadline = time.monotonic() + plan.max_seconds
    stop = threading.Event()
    script_done = threading.Event()  # the publish and the kill are over: the clients may stop at the count
    headers = {"X-API-Key": cluster.api_key}

    def feedback_body(n: int, rng: random.Random, last: dict) -> tuple[dict, bool]:
        with shared.lock:
            resend = (n // plan.feedback_every) % plan.resend_every == plan.resend_every - 1 and shared.stored_ids
            event_id = rng.choice(shared.stored_ids) if resend else f"{run}-{n:07d}"
            if not resend:
                shared.unique_ids.add(event_id)
        body = {"event": "used", "suggestion_id": last.get("id", "refund-timing"), "kind": last.get("kind", "article"),
                "event_id": event_id, "session_id": f"{run}-s{n % 97}", "request_id": last.get("request_id"),
                "index_version": last.get("index_version")}
        return {k: v for k, v in body.items() if v is not None}, bool(resend)

    def client(slot: int) -> None:
        rng = random.Random(slot)
        last: dict = {}
        with httpx.Client(base_url=cluster.url, headers=headers, timeout=60) as c:
            while not stop.is_set() and time.monotonic() < deadline:
                n = next(counter)
                if n >= plan.requests and script_done.is_set():
                    return
                is_feedback = n % plan.feedback_every == plan.feedback_every - 1
                resend = False
                if is_feedback:
                    body, resend = feedback_body(n, rng, last)
                start = time.monotonic()
                try:
                    r = c.post("/v1/feedback", json=body) if is_feedback else c.post("/v1/suggest", json=bodies[n % len(bodies)])
                    ok, why = 200 <= r.status_code < 300, str(r.status_code)
                    data = r.json() if ok else None
                except (httpx.HTTPError, ValueError) as exc:
                    ok, why, data, r = False, type(exc).__name__, None, None
                elapsed = time.monotonic() - start
                version = None
                if ok and not is_feedback:
                    version = data["index_version"]
                    hit = (data.get("answers") or [{}])[0]
                    last = {"request_id": data.get("request_id"), "index_version": version,
                            "id": hit.get("article_id", "refund-timing"), "kind": "article"}
                with shared.lock:
                    shared.done += 1
                    shared.records.append((start, "feedback" if is_feedback else "suggest", ok, elapsed, version))
                    if not ok:
                        shared.failures[why] += 1
                        if len(shared.failure_samples) < 5:
                            shared.failure_samples.append(f"{why} {'' if r is None else r.text[:200]}")
                    elif is_feedback:
                        shared.feedback_posts += 1
                        if resend:
                            shared.resent += 1
                            shared.resent_not_duplicate += not data["duplicate"]
                        else:
                            shared.stored_ids.append(body["event_id"])
                            shared.first_answered_duplicate += bool(data["duplicate"])

    def done() -> int:
        with shared.lock:
            return shared.done

    def wait_for(fraction: float) -> bool:
        while done() < fraction * plan.requests:
            if not any(t.is_alive() for t in threads):
                return False
            time.sleep(0.05)
        return True

    first_versions = cluster.versions()
    progress(f"load: {plan.requests} requests, {plan.concurrency} clients through {cluster.url}; replicas serve {sorted(set(first_versions))}")
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(plan.concurrency)]
    start, start_wall = time.monotonic(), time.time()
    for t in threads:
        t.start()
    swap_seconds = new_version = swap_done_at = flip_at = seen_seconds = swap_each = None
    back_version = killed_pid = restarted_pid = back_wall = build_seconds = ready_seconds = None
    try:
        if wait_for(plan.publish_at):
            progress(f"load: {done()} done; publishing a new index version")
            t0 = time.monotonic()
            new_version = publish()
            flip_wall = (cluster.index_dir / "CURRENT").stat().st_mtime  # the moment CURRENT flipped
            flip_at = time.monotonic() - (time.time() - flip_wall)
            build_seconds = round(time.monotonic() - t0, 1)
            progress(f"load: built {new_version} in {build_seconds} s; waiting for every replica to serve it")
            limit = time.monotonic() + plan.swap_margin + cluster.poll_seconds + 60
            while time.monotonic() < limit:
                ready = cluster.readiness()
                if all(r and r["index_version"] == new_version for r in ready):
                    swap_done_at = time.monotonic()
                    seen_seconds = round(time.time() - flip_wall, 2)
                    # Each replica says when it began serving the version: /readyz calls queue behind the
                    # load, so the moment this loop sees them all is later than the swaps themselves.
                    swapped = [datetime.fromisoformat(r["serving_since"]).timestamp() - flip_wall for r in ready]
                    swap_seconds = round(max(swapped), 2)
                    swap_each = [round(x, 2) for x in swapped]
                    break
                time.sleep(0.1)
            progress(f"load: {done()} done; all replicas on {new_version} {swap_seconds} s after CURRENT flipped "
                     f"(each {swap_each}; seen by this client after {seen_seconds} s)")
        if wait_for(plan.kill_at):
            i = plan.kill_replica
            killed_pid = cluster.replica_pid(i)
            progress(f"load: {done()} done; SIGKILL replica {i} (pid {killed_pid}), restart in {plan.down_seconds:.0f} s")
            cluster.kill_replica(i)
            time.sleep(plan.down_seconds)
            t0 = time.monotonic()
            back_version = cluster.restart_replica(i)
            back_wall = time.time()
            restarted_pid = cluster.replica_pid(i)
            ready_seconds = round(time.monotonic() - t0, 1)
            progress(f"load: {done()} done; replica {i} back (pid {restarted_pid}, {back_version}) {ready_seconds} s after its restart")
        time.sleep(plan.tail_seconds)
        script_done.set()
        last = time.monotonic()
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if time.monotonic() - last > 5:
                last = time.monotonic()
                progress(f"load: {done()} done (at least {plan.requests})")
    finally:
        script_done.set()
        stop.set()
        for t in threads:
            t.join(timeout=70)
    records = shared.records
    # the load's own span (the restart may outlast it)
    wall = max((x[0] + x[3] for x in records), default=start) - start
    lat = sorted(x[3] * 1000 for x in records if x[2])
    lat_suggest = sorted(x[3] * 1000 for x in records if x[2] and x[1] == "suggest")
    served = {"before_publish": Counter(), "during_swap": Counter(), "after_swap": Counter()}
    for began, kind, ok, _, version in records:
        if ok and kind == "suggest":
            phase = ("before_publish" if flip_at is None or began < flip_at
                     else "after_swap" if swap_done_at is not None and began >= swap_done_at else "during_swap")
            served[phase][version] += 1
    rows, distinct = count_feedback_rows(cluster.database_url, run)
    upstream = upstream_counts(cluster.access_log, start_wall=start_wall)
    killed_addr = f"127.0.0.1:{cluster.replica_ports[plan.kill_replica]}"
    after_restart = upstream_counts(cluster.access_log, start_wall=back_wall)["by_replica"].get(killed_addr, 0) if back_wall else 0
    failed = sum(shared.failures.values())
    figures = {
        "requests": len(records), "concurrency": plan.concurrency, "seconds": round(wall, 1),
        "requests_per_s": round(len(records) / wall, 1) if wall else 0.0,
        "latency_ms": {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1), "p99": round(percentile(lat, 99), 1),
                       "max": round(lat[-1], 1) if lat else None},
        "suggest_latency_ms": {"p50": round(percentile(lat_suggest, 50), 1), "p95": round(percentile(lat_suggest, 95), 1)},
        "failed": failed, "failures": dict(shared.failures), "failure_samples": shared.failure_samples,
        "feedback": {"posts": shared.feedback_posts, "unique_event_ids": len(shared.unique_ids), "resent": shared.resent,
                     "resent_answered_not_duplicate": shared.resent_not_duplicate,
                     "first_posts_answered_duplicate": shared.first_answered_duplicate, "db_rows": rows, "db_distinct_event_ids": distinct},
        "index": {"first": sorted({v for v in first_versions if v}), "new": new_version, "build_seconds": build_seconds, "poll_seconds": cluster.poll_seconds,
                  "swap_seconds": swap_seconds, "swap_seconds_each": swap_each, "swap_seen_seconds": seen_seconds,
                  "served": {k: dict(v) for k, v in served.items()}},
        "kill": {"replica": plan.kill_replica, "killed_pid": killed_pid, "restarted_pid": restarted_pid, "back_on": back_version,
                 "ready_seconds": ready_seconds,
                 "requests_served_after_restart": after_restart},
        "nginx": upstream,
        "events_reached": {"publish": new_version is not None, "kill": killed_pid is not None},
    }
    figures["targets"] = {
        "no_failed_requests": failed == 0 and len(records) >= plan.requests,
        "feedback_exactly_once": rows == distinct == len(shared.unique_ids) and shared.resent_not_duplicate == 0,
        "swap_within_poll_plus_margin": swap_seconds is not None and swap_seconds <= cluster.poll_seconds + plan.swap_margin,
        "after_swap_only_new_version": new_version is not None and set(served["after_swap"]) <= {new_version},
        "killed_replica_came_back": back_version is not None and after_restart > 0,
    }
    return figures


def count_feedback_rows(database_url: str, run: str) -> tuple[int, int]:
    """Rows in the feedback table with this run's event_ids, and how many distinct event_ids they hold."""
    import sqlalchemy as sa

    from assist.feedback import engine_for, store_url

    engine = engine_for(store_url(database_url))
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM feedback WHERE event_id LIKE :p"),
                                          {"p": f"{run}-%"}).one()
    finally:
        engine.dispose()
    return int(rows), int(distinct)


def upstream_counts(access_log: Path, start_wall: float) -> dict:
    """From nginx's access log (format in scripts/cluster.py): requests per replica since `start_wall`, and how
    many nginx sent to a second replica after a failed try."""
    by_replica: Counter = Counter()
    retried = 0
    if access_log.is_file():
        for line in access_log.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("|")
            if len(parts) != 7 or float(parts[0]) < start_wall or not parts[4]:
                continue
            addrs = [a.strip() for a in parts[4].replace(" : ", ",").split(",")]
            retried += len(addrs) > 1
            by_replica[addrs[-1]] += 1
    return {"by_replica": dict(by_replica), "retried_on_another_replica": retried}


def report(f: dict) -> str:
    lat, fb, idx, kill = f["latency_ms"], f["feedback"], f["index"], f["kill"]
    lines = [
        f"{f['requests']} requests, {f['concurrency']} clients, {f['seconds']} s -> {f['requests_per_s']} requests/s",
        f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}   (suggest only: p50 "
        f"{f['suggest_latency_ms']['p50']}  p95 {f['suggest_latency_ms']['p95']})",
        f"failed requests: {f['failed']} {f['failures'] or ''}",
        f"feedback: {fb['unique_event_ids']} unique event_ids sent (+{fb['resent']} re-sent, {fb['resent_answered_not_duplicate']} of them "
        f"not answered duplicate) -> {fb['db_rows']} rows, {fb['db_distinct_event_ids']} distinct event_ids in PostgreSQL",
        f"index swap: {idx['first']} -> {idx['new']} (built in {idx['build_seconds']} s): every replica on it {idx['swap_seconds']} s after CURRENT flipped "
        f"(each {idx['swap_seconds_each']}, by its /readyz serving_since; seen by this client after {idx['swap_seen_seconds']} s; "
        f"poll {idx['poll_seconds']} s)",
        f"served: {idx['served']}",
        f"kill: replica {kill['replica']} pid {kill['killed_pid']} -> restarted pid {kill['restarted_pid']} on {kill['back_on']}, "
        f"ready {kill['ready_seconds']} s after its restart, {kill['requests_served_after_restart']} requests served after it was back",
        f"nginx: per replica {f['nginx']['by_replica']}, {f['nginx']['retried_on_another_replica']} requests retried on another replica",
    ]
    lines += [f"target {name}: {'ok' if ok else 'FAILED'}" for name, ok in f["targets"].items()]
    return "\n".join(lines)


def cli_publish(kb: Path, index_dir: Path, env: dict[str, str]) -> Callable[[], str]:
    """A publisher running `assist index build --kb KB` on `index_dir` (what an operator does); returns the new version."""

    def publish() -> str:
        out = subprocess.run([str(BIN / "assist"), "index", "build", "--kb", str(kb)], capture_output=True, text=True,
                             env={**os.environ, **env, "ASSIST_INDEX_DIR": str(index_dir), "OMP_NUM_THREADS": "1"})
        if out.returncode != 0:
            raise ClusterError(f"assist index build failed:\n{out.stdout}{out.stderr}")
        return (index_dir / "CURRENT").read_text().strip()

    return publish


def copy_current(source: Path, dest: Path) -> str:
    """A private index store holding `source`'s CURRENT version and its embedding cache (a rebuild of the same KB
    reuses the vectors); the version."""
    version = (source / "CURRENT").read_text().strip() if (source / "CURRENT").is_file() else ""
    if not version:
        raise ClusterError(f"no index in {source} (no CURRENT): build an index first: assist index build --kb kb")
    dest.mkdir(parents=True)
    shutil.copytree(source / version, dest / version)
    if (source / "embed-cache.sqlite").is_file():
        shutil.copy2(source / "embed-cache.sqlite", dest / "embed-cache.sqlite")
    (dest / "CURRENT").write_text(version + "\n")
    return version


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running cluster's balancer (its files in --dir); default: start one in a temp folder")
    ap.add_argument("--dir", type=Path, default=ROOT / ".assist" / "cluster", help="the running cluster's folder (with --url)")
    ap.add_argument("--fake", action="store_true", help="the hashing embedder and the tests' tiny KB instead of the real model")
    ap.add_argument("--index", type=Path, default=ROOT / ".assist" / "index", help="index store whose CURRENT version is copied (real model)")
    ap.add_argument("--kb", type=Path, help="KB the new version is built from (default kb/, with --fake tests/data/kb)")
    ap.add_argument("--requests", type=int, default=Plan.requests)
    ap.add_argument("--concurrency", type=int, default=Plan.concurrency)
    ap.add_argument("--poll-seconds", type=float, default=2.0, help="ASSIST_INDEX_POLL_SECONDS of a started cluster")
    ap.add_argument("--swap-margin", type=float, default=Plan.swap_margin)
    ap.add_argument("--keep", action="store_true", help="leave the started cluster's temp folder (logs) behind; it is stopped anyway")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    if args.requests < 100:
        sys.exit("--requests: at least 100 (the publish and the kill happen at fixed fractions of the run)")
    plan = Plan(requests=args.requests, concurrency=args.concurrency, swap_margin=args.swap_margin)
    env: dict[str, str] = {}
    if args.fake:
        from tests.conftest import FAKE_ENV

        env = dict(FAKE_ENV)
    kb = args.kb or (ROOT / "tests" / "data" / "kb" if args.fake else ROOT / "kb")
    bodies = load_bodies(ROOT / "evals" / "queries.jsonl")
    load_before = [round(x, 2) for x in os.getloadavg()]
    tmp = None
    try:
        if args.url:
            check_loopback(args.url)
            cluster = Cluster(args.dir, env=env)
            if not cluster.replica_ports:
                sys.exit(f"no cluster in {args.dir} (no cluster.json): start one with make cluster")
            cluster.port = int(args.url.rsplit(":", 1)[1].split("/")[0])
            print(f"publishing into the running cluster's index folder {cluster.index_dir} (from {kb})")
        else:
            tmp = Path(tempfile.mkdtemp(prefix="assist-cluster-"))
            os.chmod(tmp, 0o755)  # PostgreSQL runs as the user postgres when we are root
            index_dir = tmp / "index"
            if args.fake:
                cli_publish(kb, index_dir, env)()
            else:
                copy_current(args.index, index_dir)
            cluster = Cluster(tmp / "cluster", index_dir=index_dir, env=env, poll_seconds=args.poll_seconds)
            t0 = time.monotonic()
            print(f"starting PostgreSQL, {cluster.n} replicas and nginx in {cluster.dir} ({'hashing embedder' if args.fake else 'real model'})")
            cluster.up()
            print(f"cluster up in {time.monotonic() - t0:.1f} s: {cluster.url}")
        figures = run_cluster_load(cluster, bodies, cli_publish(kb, cluster.index_dir, env), plan)
    except ClusterError as exc:
        print(f"cluster_load: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            for line in cluster.down() if "cluster" in locals() else []:
                print(line)
            if args.keep:
                print(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    figures.update(date=time.strftime("%Y-%m-%d %H:%M"), loadavg_before=load_before, loadavg_after=[round(x, 2) for x in os.getloadavg()], cpus=os.cpu_count(),
                   embedder="hashing" if args.fake else "real model")
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0 if all(figures["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
