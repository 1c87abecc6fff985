"""Replay labelled queries through the retrievers and score them (DESIGN §6)."""

import json
import time
from pathlib import Path

import numpy as np

from assist.errors import AssistError
from assist.index.chunk import Chunk, chunk_id
from assist.index.store import Index, build_from_chunks, load_index
from evals.metrics import evaluate

RETRIEVAL_METRICS = ["hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "recall@5"]


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise AssistError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def corpus_chunks(corpus: list[dict]) -> list[Chunk]:
    """One chunk per external document (InsuranceQA answers are short)."""
    out = []
    for row in corpus:
        title = row.get("title") or ""
        path = (title,) if title else ()
        out.append(Chunk(chunk_id(row["id"], path, row["text"]), str(row["id"]), "article", title, path, row["text"]))
    return out


def index_corpus(corpus_path: Path, work_dir: Path, embedder, **build_args) -> Index:
    """Build (or reuse, through the embedding cache) an index of an external corpus.jsonl."""
    chunks = corpus_chunks(read_jsonl(corpus_path))
    build_from_chunks(chunks, work_dir, embedder, keep_versions=1, **build_args)
    return load_index(work_dir, embedder)


def run_retrieval(index: Index, queries: list[dict], variants: list[str], k: int = 10) -> dict:
    """Metrics and latency per variant; a hit is any relevant id among the top-k distinct documents."""
    report = {"n_queries": len(queries), "variants": {}}
    for variant in variants:
        runs, latencies = [], []
        for q in queries:
            start = time.perf_counter()
            hits = index.search(q["text"], k=k * 3, mode=variant)
            latencies.append((time.perf_counter() - start) * 1000)
            ranked = list(dict.fromkeys(h.chunk.article_id for h in hits))[:k]
            runs.append((ranked, q["relevant"]))
        scores = evaluate(runs, RETRIEVAL_METRICS)
        scores["latency_ms_p50"] = float(np.percentile(latencies, 50))
        scores["latency_ms_p95"] = float(np.percentile(latencies, 95))
        report["variants"][variant] = {name: round(v, 4) for name, v in scores.items()}
    return report
