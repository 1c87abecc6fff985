"""Every benchmark end to end, one JSON file: the numbers behind README's "Benchmarks" section.

    python bench/run_all.py --json out.json [--quick] [--no-fp32]

Steps (each in its own process, one intra-op thread per process unless marked @2):
  1. build      bench/build.py: cold builds (empty cache) of 300 real chunks with torch, onnx,
                onnx-int8 and torch-bf16, on one thread and (@2) on both cores; warm rebuilds of the 10k and 100k corpora (this is the 100k corpus build:
                vectors come from the seeded cache, see bench/corpus.py).
  2. suggest    bench/suggest.py at 1k / 10k / 100k chunks: p50/p95/p99 per stage, RSS.
  3. qps        bench/qps.py: `assist serve` with 1 and 2 workers over the 10k index, requests/s at
                p95 < 50 ms.
  4. langchain  bench/langchain_compare.py: the stock LangChain hybrid pipeline vs ours on all 2,000
                InsuranceQA-zh queries.
  5. query      bench/query_backend.py: fp32 vs int8 query encoding (latency, InsuranceQA, the labelled
                conversations).
Steps 2-3 run with the configured query backend (ASSIST_EMBEDDING__QUERY_BACKEND, default "auto" =
int8 queries over fp32 passages) and again with fp32 queries unless --no-fp32 (suggest at 10k/100k,
1 worker). --quick: 1k and 10k only, fewer queries and
requests (a smoke run of a few minutes). The first run ever also builds the corpora and their vector
caches (~4 min more on 2 cores; nothing is re-encoded if the eval caches exist).
Corpora past the 8,479 real chunks use DERIVED vectors (see bench/corpus.py): latency and memory at
10k/100k are realistic, retrieval quality there is not claimed.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, loadavg  # noqa: E402

BENCH = Path(__file__).resolve().parent
TARGETS = {
    "suggest_10k_p50_ms": 8, "suggest_10k_p95_ms": 25, "suggest_100k_p95_ms": 30, "qps_per_process": 100,
    "build_chunks_per_s": 100, "rss_mb_per_100k_chunks": 400, "langchain_latency_ratio": 5,
}


def step(name: str, script: str, args: list[str], env: dict | None = None) -> dict:
    """Run one benchmark script, stream its output, return its --json result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    start = time.perf_counter()
    print(f"\n=== {name}: python bench/{script} {' '.join(args)}  (load {loadavg()})", flush=True)
    proc = subprocess.run([sys.executable, str(BENCH / script), *args, "--json", str(out)], cwd=ROOT,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode})")
    result = json.loads(out.read_text())
    out.unlink()
    result["_seconds"] = round(time.perf_counter() - start, 1)
    print(f"=== {name} done in {result['_seconds']}s", flush=True)
    return result


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "assist", "api"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+uncommitted" if dirty else "")
    except OSError:
        return "unknown"


def summary(r: dict) -> list[tuple[str, str, str, str]]:
    rows = []

    def add(label, value, target, ok):
        rows.append((label, value, target, "ok" if ok else "MISSED"))

    s = r["suggest"]
    for size, p50_t, p95_t in (("10000", TARGETS["suggest_10k_p50_ms"], TARGETS["suggest_10k_p95_ms"]),
                               ("100000", None, TARGETS["suggest_100k_p95_ms"])):
        if size in s:
            if p50_t:
                add(f"suggest p50 @ {size}", f"{s[size]['p50_ms']:.1f} ms", f"<= {p50_t} ms", s[size]["p50_ms"] <= p50_t)
            add(f"suggest p95 @ {size}", f"{s[size]['p95_ms']:.1f} ms", f"<= {p95_t} ms", s[size]["p95_ms"] <= p95_t)
    add("requests/s per process (p95<50ms)", f"{r['qps_per_process']:.1f}", ">= 100", r["qps_per_process"] >= 100)
    add("build chunks/s (warm cache)", f"{r['build_chunks_per_s']:.0f}", ">= 100", r["build_chunks_per_s"] >= 100)
    for name, label in (("build_chunks_per_s_cold", "cold, fp32 passages (default)"),
                        ("build_chunks_per_s_cold_bf16", "cold, torch-bf16 passages"),
                        ("build_chunks_per_s_cold_int8", "cold, int8 passages")):
        v = r.get(name) or 0.0
        add(f"build chunks/s ({label})", f"{v:.1f}", "(>= 100)", v >= 100)
    if r.get("rss_mb_per_100k_chunks") is not None:
        add("RSS per 100k chunks", f"{r['rss_mb_per_100k_chunks']:.0f} MB", "<= 400 MB", r["rss_mb_per_100k_chunks"] <= 400)
    lc = r["langchain"]
    add("LangChain latency ratio", f"{lc['latency_ratio']:.2f}x", ">= 5x", lc["latency_ratio"] >= 5)
    add("hit@5 ours vs LangChain", f"{lc['hit@5_ours']:.3f} vs {lc['hit@5_langchain']:.3f}", "ours >=", lc["hit@5_ours"] >= lc["hit@5_langchain"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="1k and 10k only, fewer queries/requests")
    ap.add_argument("--no-fp32", action="store_true", help="skip the comparison runs with fp32 query encoding")
    args = ap.parse_args()
    start = time.perf_counter()
    q = args.quick
    sizes = "1k,10k" if q else "1k,10k,100k"
    fp32 = {"ASSIST_EMBEDDING__QUERY_BACKEND": "same"}
    from common import settings

    s = settings()
    r: dict = {
        "machine": {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "loadavg_start": loadavg(),
                    "python": platform.python_version()},
        "commit": git_commit(), "quick": q,
        "config": {"backend": s.embedding.backend, "query_backend": s.embedding.query_backend,
                   "dense_kind": s.dense.kind, "approx_threshold": s.dense.approx_threshold,
                   "hnsw_ef_search": s.dense.hnsw_ef_search, "hybrid": s.hybrid.method, "threads": 1},
        "note": "chunks past the 8,479 real ones (KB + InsuranceQA-zh) have derived vectors (normalised mean of "
                "their source passages' real vectors): latency/memory realistic, quality at 10k/100k not claimed",
    }
    r["build"] = step("build", "build.py", ["--cold-chunks", "100" if q else "300", "--warm-sizes", "10k" if q else "10k,100k"])
    sug = step("suggest", "suggest.py", ["--sizes", sizes, "--passes", "1" if q else "2"])
    r["suggest_detail"] = sug
    r["suggest"] = {str(v["chunks"]): {**v["suggest_wall"], "dense_kind": v["dense_kind"]} for v in sug["sizes"].values()}
    per = sug.get("rss_per_100k")
    r["rss_mb_per_100k_chunks"] = per["rss_mb_per_100k_chunks"] if per else None
    r["rss_per_100k_detail"] = per
    qps_args = ["--size", "10k", "--concurrency", "1,2,3,4,6,8",
                "--requests", "150" if q else "400", "--max-seconds", "8" if q else "15"]
    r["qps"] = step("qps", "qps.py", [*qps_args, "--workers", "1,2"])
    r["qps_per_process"] = r["qps"]["1"]["per_process"]
    r["qps_per_process_2_workers"] = r["qps"]["2"]["per_process"]
    lc = step("langchain", "langchain_compare.py", ["--queries", "300" if q else "2000"])
    r["langchain"] = lc
    r["query_backend"] = step("query backend", "query_backend.py", ["--queries", "300" if q else "1000"])
    if not args.no_fp32 and s.embedding.query_backend != "same":
        sug32 = step("suggest, fp32 queries", "suggest.py", ["--sizes", "10k" if q else "10k,100k", "--passes", "1"], fp32)
        r["fp32_queries"] = {
            "suggest": {str(v["chunks"]): {**v["suggest_wall"], "dense_kind": v["dense_kind"]} for v in sug32["sizes"].values()},
            "suggest_detail": sug32,
            "qps": step("qps, fp32 queries", "qps.py", [*qps_args, "--workers", "1"], fp32),
        }
        r["fp32_queries"]["qps_per_process"] = r["fp32_queries"]["qps"]["1"]["per_process"]
    r["build_chunks_per_s"] = r["build"]["warm"]["10k"]["chunks_per_s"]
    cold = r["build"]["cold"]  # all cores, as `assist index build` encodes passages
    r["build_chunks_per_s_cold"] = max((v["chunks_per_s"] for k, v in cold.items() if k.startswith("onnx@")), default=None)
    r["build_chunks_per_s_cold_bf16"] = max((v["chunks_per_s"] for k, v in cold.items() if k.startswith("torch-bf16@")), default=None)
    r["build_chunks_per_s_cold_int8"] = max((v["chunks_per_s"] for k, v in cold.items() if k.startswith("onnx-int8@")), default=None)
    r["machine"]["loadavg_end"] = loadavg()
    r["seconds"] = round(time.perf_counter() - start, 1)
    args.json.write_text(json.dumps(r, indent=2, ensure_ascii=False))

    print(f"\n=== summary (configured query backend: {s.embedding.query_backend}; load at start {r['machine']['loadavg_start']}, "
          f"end {r['machine']['loadavg_end']}; {r['seconds'] / 60:.1f} min)")
    for label, value, target, verdict in summary(r):
        print(f"  {label:46} {value:>16}  target {target:10} {verdict}")
    if "fp32_queries" in r:
        f32 = r["fp32_queries"]
        cells = ", ".join(f"{n}: p50 {v['p50_ms']:.1f} / p95 {v['p95_ms']:.1f} ms" for n, v in f32["suggest"].items())
        print(f"  with fp32 queries: suggest {cells}; {f32['qps_per_process']} req/s per process")
    sr = r["langchain"]["same_runtime"]
    print(f"  LangChain with our query runtime on both sides: {sr['latency_ratio']}x, hit@5 {r['langchain']['hit@5_ours']} vs {sr['hit@5_langchain']}")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
