"""The intent model on the sample KB: build-time training seconds and the intent stage's per-query time.

    OMP_NUM_THREADS=1 python bench/intent.py [--kb kb] [--dataset evals/queries.jsonl] [--repeat 3]

Training rows come from the KB as the index build takes them (query vectors cached in the eval
index's embedding cache); the stage is timed as the pipeline calls it: one query at a time, with the
retrieved chunks as KB evidence. Prints one JSON line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assist.config import get_settings  # noqa: E402
from assist.index.chunk import chunk_kb  # noqa: E402
from assist.index.embed import embedder_from_settings  # noqa: E402
from assist.index.store import build_index, open_index, query_vectors  # noqa: E402
from assist.kb import load_kb  # noqa: E402
from assist.suggest.intent import IntentDetector, train_for_kb  # noqa: E402
from assist.suggest.pipeline import Suggester  # noqa: E402
from evals.io import eval_index_dir, load_conversations  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=Path, default=Path("kb"))
    ap.add_argument("--dataset", type=Path, default=Path("evals/queries.jsonl"))
    ap.add_argument("--repeat", type=int, default=3, help="training runs (the median is reported)")
    args = ap.parse_args()
    s = get_settings()
    embedder = embedder_from_settings(s, build=True)
    index_dir = eval_index_dir(s)
    build_index(args.kb, index_dir, embedder, chunking=s.chunking, dense=s.dense, intent=s.intent, keep_versions=1)
    index = open_index(s, index_dir, embedder)
    kb = load_kb(args.kb)
    chunks = chunk_kb(kb, s.chunking.size, s.chunking.overlap)
    encode = lambda texts: query_vectors(texts, index_dir, embedder)  # noqa: E731
    seconds = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        model = train_for_kb(kb, chunks, encode, s.intent.options(), np.asarray(index.vectors))
        seconds.append(time.perf_counter() - start)
    suggester = Suggester(index, s.suggest)
    queries = [suggester.suggest(r["conversation"]).query.text for r in load_conversations(args.dataset)]
    queries = [q for q in queries if q]
    vectors = embedder.encode_queries(queries)
    hits = [index.search(q, k=20, kind="article", query_vector=v) for q, v in zip(queries, vectors)]
    detector = IntentDetector(list(kb.intents), model)
    times = []
    for _ in range(3):
        for q, v, h in zip(queries, vectors, hits):
            start = time.perf_counter()
            detector.detect(q, v, h)
            times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"training_rows": model.info["rows"], "train_seconds_median": round(float(np.median(seconds)), 2),
                      "intent_ms_p50": round(float(np.median(times)), 3), "intent_ms_p95": round(float(np.percentile(times, 95)), 3),
                      "queries": len(queries)}))


if __name__ == "__main__":
    main()
