"""Warm single-request latency of the suggest pipeline, per stage, at 1k / 10k / 100k chunks; RSS.

    python bench/suggest.py [--sizes 1k,10k,100k] [--passes 2] [--json out.json]

Each size runs in a fresh process (so RSS is that size's alone) with one intra-op thread: the query
embedder of the configured query backend, the cached benchmark index (bench/corpus.py builds it), a
Suggester, a warm-up, then every conversation of evals/queries.jsonl (355 real-looking multi-turn
cases) `--passes` times, one request at a time. It reports p50/p95/p99 of
  * the whole `Suggester.suggest` call (wall clock) and each stage of its `timings_ms`
    (query, encode, retrieve, intent, emotion, rank, templates);
  * on the same queries: the query encode, the BM25 tokenizer, the article / template searches
    whole, and the stages of the article search as `Index.search(timings=...)` reports them
    (dense, bm25 = tokenize + score every row, fusion, rank);
  * RSS after loading and after the run (VmRSS, and its anonymous / file-backed parts: vectors.npy is
    memory-mapped);
  * above the flat threshold, the recall of the HNSW index: share of the exact top-100 dense
    candidates it returns at the article search's depth, on 200 of the same queries, for the
    configured efSearch and 256 / 512 (with the search time of each).
RSS per 100k chunks = (RSS at 100k - RSS at 1k) / 99,000 x 100,000, i.e. what the chunks cost on top
of the model and the process.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SIZES, conversations, emit, loadavg, memory_mb, parse_emitted, percentiles, query_embedder, settings  # noqa: E402

STAGES = ("query", "encode", "retrieve", "intent", "emotion", "rank", "templates")


def measure(size: str, passes: int, warmup: int) -> dict:
    """Runs inside the per-size process."""
    import numpy as np
    from corpus import index_dir

    from assist.index.dense import search_dense
    from assist.index.store import open_index
    from assist.suggest.pipeline import Suggester

    s = settings()
    mem_start = memory_mb()
    t0 = time.perf_counter()
    embedder = query_embedder()
    model_s = time.perf_counter() - t0
    mem_model = memory_mb()
    t0 = time.perf_counter()
    index = open_index(s, index_dir(size), embedder)
    suggester = Suggester(index, s.suggest)
    load_s = time.perf_counter() - t0
    mem_loaded = memory_mb()

    bodies = conversations()
    for body in bodies[:warmup]:
        suggester.suggest(body["conversation"], body["customer"])
    stages = {k: [] for k in (*STAGES, "total")}
    wall, queries = [], []
    for _ in range(passes):
        for body in bodies:
            start = time.perf_counter()
            out = suggester.suggest(body["conversation"], body["customer"])
            wall.append((time.perf_counter() - start) * 1000)
            for k in stages:
                stages[k].append(out.timings_ms.get(k, 0.0))
            if out.query.text:
                queries.append(out.query.text)
    mem_after = memory_mb()  # steady state of the product's own path, before the pieces below

    # The stages of Index.search, as Index.search itself times them, on the same query texts.
    top_k = s.suggest.answers
    want = max(max(4 * top_k, 20), index.hybrid.candidates)
    pieces = {k: [] for k in ("encode", "bm25_tokenize", "search_articles", "search_templates")}
    stage_ms = {f"articles.{k}": [] for k in ("dense", "bm25", "fusion", "rank")}
    clock = time.perf_counter
    for q in queries:
        t = clock(); qv = embedder.encode_queries([q])[0]; pieces["encode"].append(clock() - t)
        t = clock(); index.lexical.tokenizer.tokenize(q); pieces["bm25_tokenize"].append(clock() - t)
        index.lexical.clear_memo()  # as in a request: BM25 not yet computed
        laps: dict[str, float] = {}
        t = clock(); index.search(q, k=max(4 * top_k, 20), mode="hybrid", kind="article", query_vector=qv, timings=laps)
        pieces["search_articles"].append(clock() - t)
        for k in ("dense", "bm25", "fusion", "rank"):
            stage_ms[f"articles.{k}"].append(laps.get(k, 0.0))
        t = clock(); index.search(q, k=len(suggester.templates), mode="hybrid", kind="template", query_vector=qv)
        pieces["search_templates"].append(clock() - t)
    recall = None
    if index.manifest["dense"]["kind"] == "hnsw":  # the approximate index against exact search, same queries
        vectors = np.load(index.path / "vectors.npy")  # after the RSS reading: this touches every row
        sample = embedder.encode_queries(queries[:200])
        exact = [set(np.argpartition(-(vectors @ qv), want)[:want].tolist()) for qv in sample]
        configured = index.dense_index.hnsw.efSearch
        recall = {}
        for ef in sorted({configured, 256, 512}):
            index.dense_index.hnsw.efSearch = ef
            found, t = [], clock()
            for qv, ex in zip(sample, exact):
                _, rows = search_dense(index.dense_index, qv, want * 4)  # the article search's depth
                found.append(len(set(rows.tolist()) & ex) / want)
            recall[f"ef_search_{ef}"] = {f"recall@{want}": round(float(np.mean(found)), 4),
                                         "search_ms": round((clock() - t) * 1000 / len(sample), 3)}
        index.dense_index.hnsw.efSearch = configured
    return {
        "size": size,
        "chunks": len(index.chunks),
        "dense_recall_at_candidates": recall,
        "dense_kind": index.manifest["dense"]["kind"],
        "query_model": getattr(embedder, "query_model_id", embedder.model_id),
        "index_model": index.manifest["model"]["id"],
        "requests": len(wall),
        "model_load_s": round(model_s, 2),
        "index_load_s": round(load_s, 2),
        "memory": {"start": mem_start, "model_loaded": mem_model, "index_loaded": mem_loaded, "after_run": mem_after},
        "suggest_wall": percentiles(wall),
        "stages": {k: percentiles(v) for k, v in stages.items()},
        "pieces": {**{k: percentiles(np.asarray(v) * 1000) for k, v in pieces.items()},
                   **{k: percentiles(v) for k, v in stage_ms.items()}},
        "loadavg": loadavg(),
    }


def run_size(size: str, passes: int, warmup: int) -> dict:
    """One size in a fresh process (clean RSS, no state shared with other sizes)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--one", size, "--passes", str(passes), "--warmup", str(warmup)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench/suggest.py --one {size} failed:\n{proc.stderr[-3000:]}")
    return parse_emitted(proc.stdout)


def rss_per_100k(results: dict) -> dict | None:
    small, large = results.get("1k"), results.get("100k") or results.get("10k")
    if not small or not large or large is small:
        return None
    dn = large["chunks"] - small["chunks"]
    out = {"from": [small["size"], large["size"]]}
    for key in ("rss_mb", "rss_anon_mb", "rss_file_mb"):
        out[key.replace("_mb", "_mb_per_100k_chunks")] = round(
            (large["memory"]["after_run"][key] - small["memory"]["after_run"][key]) / dn * 100_000, 1)
    return out


def print_table(results: dict) -> None:
    print("\nsuggest latency, warm, one request at a time, ms (p50 / p95 / p99)")
    cols = list(results)
    print(f"{'':30}" + "".join(f"{c + ' (' + results[c]['dense_kind'] + ')':>26}" for c in cols))

    def row(name, get):
        cells = []
        for c in cols:
            p = get(results[c])
            cells.append(f"{p['p50_ms']:8.2f} {p['p95_ms']:8.2f} {p['p99_ms']:8.2f}")
        print(f"{name:30}" + "".join(f"{x:>26}" for x in cells))

    row("suggest (wall)", lambda r: r["suggest_wall"])
    for st in STAGES:
        row(f"  {st}", lambda r, st=st: r["stages"][st])
    print("pieces of a request, timed directly, and the stages of the article search (Index.search timings):")
    for name in next(iter(results.values()))["pieces"]:
        row(f"  {name}", lambda r, name=name: r["pieces"][name])
    for c in cols:
        if results[c].get("dense_recall_at_candidates") is not None:
            print(f"{c}: HNSW share of the exact top-100 dense candidates found (and search ms): "
                  + ", ".join(f"{k} {v['recall@100']:.3f} ({v['search_ms']:.2f} ms)" for k, v in results[c]["dense_recall_at_candidates"].items()))
    print("RSS MB after load / after run (anon + file-backed):")
    for c in cols:
        m = results[c]["memory"]
        print(f"  {c:6} model {m['model_loaded']['rss_mb']:7.1f}  index loaded {m['index_loaded']['rss_mb']:7.1f}  "
              f"after run {m['after_run']['rss_mb']:7.1f} ({m['after_run']['rss_anon_mb']:.0f} + {m['after_run']['rss_file_mb']:.0f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1k,10k,100k")
    ap.add_argument("--passes", type=int, default=2, help="times each conversation is replayed")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        emit(measure(args.one, args.passes, args.warmup))
        return
    from corpus import ensure_index

    results = {}
    for size in args.sizes.split(","):
        if size not in SIZES:
            sys.exit(f"unknown size {size}; choose from {', '.join(SIZES)}")
        ensure_index(size)
        results[size] = run_size(size, args.passes, args.warmup)
    print_table(results)
    per = rss_per_100k(results)
    if per:
        print(f"RSS per 100k chunks ({per['from'][0]} -> {per['from'][1]}): {per['rss_mb_per_100k_chunks']} MB "
              f"(anon {per['rss_anon_mb_per_100k_chunks']}, file-backed {per['rss_file_mb_per_100k_chunks']})")
    if args.json:
        args.json.write_text(json.dumps({"sizes": results, "rss_per_100k": per}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
