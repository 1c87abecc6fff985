"""Retrieval evals on an external corpus (corpus.jsonl + queries.jsonl, e.g. InsuranceQA)."""

import time
from pathlib import Path

import numpy as np

from assist.config import Settings
from assist.errors import AssistError
from assist.index.chunk import Chunk, chunk_id
from assist.index.embed import Embedder, describe, embedder_from_settings
from assist.index.search import MODES, Index
from assist.index.store import build_from_chunks, open_index
from evals.io import eval_index_dir, read_jsonl
from evals.metrics import evaluate
from evals.report import Report

METRICS = ["hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "recall@5"]
COLUMNS = ("hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "latency_ms_p50", "latency_ms_p95")


def corpus_chunks(corpus: list[dict]) -> list[Chunk]:
    """One chunk per external document (InsuranceQA answers are short)."""
    out = []
    for n, row in enumerate(corpus, 1):
        if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("text"), str):
            raise AssistError(f"corpus row {n}: expected {{\"id\", \"title\", \"text\"}}")
        title = row.get("title") or ""
        path = (title,) if title else ()
        out.append(Chunk(chunk_id(row["id"], path, row["text"]), str(row["id"]), "article", title, path, row["text"]))
    return out


def index_corpus(settings: Settings, corpus_path: Path, embedder: Embedder, progress: bool = False) -> Index:
    """Build (or reuse, through the embedding cache) the eval index of a corpus.jsonl and load it
    with the configured dense and fusion settings."""
    chunks = corpus_chunks(read_jsonl(corpus_path))
    index_dir = eval_index_dir(settings, corpus_path, embedder.model_id)
    build_from_chunks(chunks, index_dir, embedder, chunking=settings.chunking, dense=settings.dense, keep_versions=1,
                      progress=progress)
    return open_index(settings, index_dir, embedder)


def run_retrieval(index: Index, queries: list[dict], variants: list[str], k: int = 10) -> Report:
    """Metrics and latency per variant; a hit is any relevant id among the top-k distinct documents."""
    data = {"n_queries": len(queries), "index_version": index.version, "variants": {}}
    for variant in variants:
        runs, latencies = [], []
        for q in queries:
            start = time.perf_counter()
            hits = index.search(q["text"], k=k * 3, mode=variant)
            latencies.append((time.perf_counter() - start) * 1000)
            ranked = list(dict.fromkeys(h.chunk.article_id for h in hits))[:k]
            runs.append((ranked, q["relevant"]))
        scores = evaluate(runs, METRICS)
        scores["latency_ms_p50"] = float(np.percentile(latencies, 50)) if latencies else 0.0
        scores["latency_ms_p95"] = float(np.percentile(latencies, 95)) if latencies else 0.0
        data["variants"][variant] = {name: round(v, 4) for name, v in scores.items()}
    return Report(data, columns=COLUMNS)


def eval_corpus(settings: Settings, corpus: Path, queries: Path, variants: list[str], limit: int = 0,
                progress: bool = False) -> Report:
    """`assist eval retrieval`: index the corpus (cached) and score the queries per variant."""
    unknown = [v for v in variants if v not in MODES]
    if unknown or not variants:
        raise AssistError(f"unknown variant(s) {', '.join(unknown) or '(none)'}; use {', '.join(MODES)}")
    embedder = embedder_from_settings(settings, build=True)
    index = index_corpus(settings, corpus, embedder, progress=progress)
    rows = read_jsonl(queries)
    if limit:
        rows = rows[:limit]
    report = run_retrieval(index, rows, variants)
    report.data["model"] = describe(embedder)
    return report
