"""Index build throughput (chunks/s): cold (empty embedding cache) per backend, and warm (every vector cached).

    python bench/build.py [--cold-chunks 300] [--backends torch,onnx,onnx-int8,onnx@all,onnx-int8@all] [--warm-sizes 10k,100k]

Cold: a seeded sample of real chunks (KB sections and InsuranceQA answers) is built into an empty
temporary index folder, so every chunk is embedded; one intra-op thread, or N with `backend@N`
(`@all` = every core, what `assist index build` uses for passages by default); the model load is
timed apart and not counted. Warm: the benchmark corpora (bench/corpus.py) are rebuilt from their seeded caches,
so nothing is embedded and the time is chunking-free index work: cache lookups, jieba + BM25, FAISS
(HNSW above 50k chunks), writing the version. Both go through `build_from_chunks`, the code path of
`assist index build`.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SIZES, embedder, loadavg, settings  # noqa: E402

from assist.index.store import build_from_chunks  # noqa: E402


def cold(n: int, backends: list[str], log=print) -> dict:
    from corpus import real_chunks

    s = settings()
    kb, words, kb_chunks, iqa_chunks = real_chunks()
    sample = random.Random(0).sample(kb_chunks + iqa_chunks, n)
    chars = sum(len(c.embed_text) for c in sample)
    out = {"chunks": n, "mean_chars": round(chars / n, 1)}
    for spec in backends:
        backend, _, n_threads = spec.partition("@")
        threads = (os.cpu_count() or 1) if n_threads == "all" else int(n_threads or 1)
        name = backend if threads == 1 else f"{backend}@{threads}"
        t0 = time.perf_counter()
        encoder = embedder(backend=backend, query_backend="same", threads=threads)
        load_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="assist-build-") as tmp:
            t0 = time.perf_counter()
            result = build_from_chunks(sample, Path(tmp), encoder, kb=kb, words=words, chunking=s.chunking,
                                       dense=s.dense, keep_versions=1)
            secs = time.perf_counter() - t0
        if result.embedded != n:
            raise RuntimeError(f"expected {n} chunks embedded, got {result.embedded}")
        out[name] = {"seconds": round(secs, 2), "chunks_per_s": round(n / secs, 1), "model_load_s": round(load_s, 1),
                     "threads": threads, "loadavg": loadavg()}
        log(f"cold build, {name:11}: {n} chunks in {secs:6.1f}s = {n / secs:6.1f} chunks/s (model load {load_s:.1f}s, not counted)")
        del encoder
    return out


def warm(sizes: list[str], log=print) -> dict:
    from corpus import ensure_index

    out = {}
    for size in sizes:
        meta = ensure_index(size, rebuild=True, log=lambda *_: None)
        out[size] = {"chunks": meta["chunks"], "seconds": meta["build_seconds"], "chunks_per_s": meta["build_chunks_per_s"],
                     "embedded": meta["embedded"], "dense_kind": meta["dense_kind"], "loadavg": loadavg()}
        log(f"warm build, {size:>5}: {meta['chunks']} chunks ({meta['dense_kind']}) in {meta['build_seconds']:6.1f}s = "
            f"{meta['build_chunks_per_s']:7.1f} chunks/s, {meta['embedded']} embedded")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold-chunks", type=int, default=300)
    ap.add_argument("--backends", default="torch,onnx,onnx-int8,torch-bf16,onnx@all,onnx-int8@all,torch-bf16@all",
                    help="backend[@threads|@all] list")
    ap.add_argument("--warm-sizes", default="10k,100k")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result = {"cold": cold(args.cold_chunks, args.backends.split(",")),
              "warm": warm([s for s in args.warm_sizes.split(",") if s in SIZES])}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
