"""Benchmark the embedding backends of the default model (torch, onnx fp32, onnx int8), one thread each.

    python bench/encode.py latency [--n 200]            single-query encode latency, all backends in one run
    python bench/encode.py quality [--queries 500]      dense-only retrieval on InsuranceQA-zh (8,000 answers)

Passage vectors are cached as .npy under --cache, so a second quality run only encodes queries.
The model must be installed first (`assist model install`, or --models-dir).
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch/onnxruntime start their pools

import numpy as np  # noqa: E402

from assist.config import DEFAULT_MODEL  # noqa: E402
from assist.index.embed import make_embedder  # noqa: E402
from evals.io import read_jsonl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "insuranceqa-zh"
COMPARED = ("torch", "onnx", "onnx-int8")  # the runtimes this script compares by default


def sample_queries(data: Path, n: int, seed: int) -> list[dict]:
    queries = read_jsonl(data / "queries.jsonl")
    return random.Random(seed).sample(queries, min(n, len(queries)))


def embedders(args) -> dict:
    out = {}
    for backend in args.backends:
        t0 = time.perf_counter()
        out[backend] = make_embedder(DEFAULT_MODEL, backend=backend, query_backend="same", models_dir=args.models_dir, threads=1)
        print(f"{backend:10s} loaded in {time.perf_counter() - t0:.2f}s", file=sys.stderr)
    return out


def latency(args) -> None:
    texts = [q["text"] for q in sample_queries(args.data, args.n, args.seed)]
    embs = embedders(args)
    for e in embs.values():  # warm-up: first calls allocate arenas and caches
        for t in texts[:10]:
            e.encode_queries([t])
    times = {name: [] for name in embs}
    for t in texts:  # interleaved, so machine noise hits every backend alike
        for name, e in embs.items():
            t0 = time.perf_counter()
            e.encode_queries([t])
            times[name].append(time.perf_counter() - t0)
    print(f"single-query latency, {len(texts)} queries (median {statistics.median(map(len, texts))} chars), threads=1")
    base = statistics.median(times[args.backends[0]])
    for name, ts in times.items():
        ms = np.array(ts) * 1e3
        print(f"  {name:10s} median {np.median(ms):6.2f} ms   p95 {np.percentile(ms, 95):6.2f} ms   "
              f"mean {ms.mean():6.2f} ms   x{base / np.median(ts):.2f} vs {args.backends[0]}")


def quality(args) -> None:
    corpus = read_jsonl(args.data / "corpus.jsonl")
    queries = sample_queries(args.data, args.queries, args.seed)
    row_of = {doc["id"]: i for i, doc in enumerate(corpus)}
    relevant = [{row_of[r] for r in q["relevant"] if r in row_of} for q in queries]
    args.cache.mkdir(parents=True, exist_ok=True)
    embs = embedders(args)
    passages = {}
    for name, e in embs.items():
        cached = args.cache / f"insuranceqa-zh-passages-{e.model_id.replace('/', '_')}.npy"
        if cached.exists():
            passages[name] = np.load(cached)
            continue
        t0 = time.perf_counter()
        vecs = e.encode_passages([(doc.get("title", "") + "\n" + doc["text"]).strip() for doc in corpus])
        secs = time.perf_counter() - t0
        print(f"{name:10s} encoded {len(corpus)} passages in {secs:.0f}s = {len(corpus) / secs:.1f} passages/s",
              flush=True)
        np.save(cached, vecs)
        passages[name] = vecs
    print(f"InsuranceQA-zh dense retrieval: {len(queries)} queries (seed {args.seed}) vs {len(corpus)} passages")
    pairs = [(name, name) for name in embs] + [(q, p) for q in embs for p in embs if q == "onnx-int8" and p != q]
    for qname, pname in pairs:
        qv = embs[qname].encode_queries([q["text"] for q in queries])
        scores = qv @ passages[pname].T
        top = np.argsort(-scores, axis=1)[:, :10]
        ranks = [next((k + 1 for k, row in enumerate(top[i]) if row in relevant[i]), None) for i in range(len(queries))]
        hit1 = np.mean([r == 1 for r in ranks])
        hit5 = np.mean([r is not None and r <= 5 for r in ranks])
        mrr = np.mean([1 / r if r else 0.0 for r in ranks])
        label = qname if qname == pname else f"{qname} queries / {pname} passages"
        print(f"  {label:38s} hit@1 {hit1:.3f}   hit@5 {hit5:.3f}   MRR@10 {mrr:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("latency", "quality"))
    parser.add_argument("--models-dir", type=Path, default=Path(os.environ.get(
        "ASSIST_MODELS_DIR", Path(sys.prefix) / "share" / "assist" / "models")))
    parser.add_argument("--backends", type=lambda s: tuple(s.split(",")), default=COMPARED)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=200, help="latency: number of queries")
    parser.add_argument("--queries", type=int, default=500, help="quality: number of sampled queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/assist-bench"))
    args = parser.parse_args()
    latency(args) if args.what == "latency" else quality(args)


if __name__ == "__main__":
    main()
