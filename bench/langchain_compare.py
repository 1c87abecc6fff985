"""assist's hybrid search next to the stock LangChain hybrid pipeline, same queries, same process.

    python bench/langchain_compare.py [--queries 2000] [--k 5] [--json out.json]

The task: InsuranceQA-zh (8,000 answers, 2,000 questions, ../shared/data); a hit is any relevant
answer among the top 5.

  ours:      `Index.search(q, k=5, mode="hybrid")` over the index `assist eval retrieval` would build
             (dense FAISS + jieba/bm25s BM25, z-score fusion).
  LangChain: what a Chinese user assembles from the docs: `langchain_community` FAISS vector store
             (`FAISS.from_embeddings`, default settings) + `BM25Retriever` (rank_bm25) with
             `jieba.lcut` as preprocess_func, both k=5, fused by `langchain_classic`'s
             `EnsembleRetriever` (weighted RRF, equal weights).

Two LangChain set-ups, both over the SAME passage vectors (our cached fp32 "passage: " vectors
handed to `FAISS.from_embeddings`, so nothing is re-encoded and both hold identical documents):
  stock:        the query embedder a LangChain user picks for a sentence-transformers model,
                `langchain_community.embeddings.HuggingFaceEmbeddings` on the same installed model
                folder (sentence-transformers on torch, fp32, one thread), with
                encode_kwargs={"normalize_embeddings": True, "prompt_name": "query"} for E5's prefix.
                This is the headline comparison (`latency_ratio`, `hit@5_langchain`).
  our runtime:  our query embedder (whatever ASSIST_EMBEDDING__QUERY_BACKEND selects) wrapped as a
                LangChain `Embeddings`: same query vectors as ours, so the difference is retrieval
                and fusion alone (`same_runtime`).
Queries rotate the order of the three contestants, one at a time, after a warm-up, so all see the
same machine state. Reported: per-query latency ratio theirs/ours (median), p50/p95 of each,
hit@1/hit@5 of each, and the ratio with the query encoding taken out (both sides get the vector from
a memo), i.e. retrieval alone.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import INSURANCEQA, loadavg, percentiles, query_embedder, read_jsonl, settings  # noqa: E402


def langchain_versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("langchain-core", "langchain-community", "langchain-classic", "rank-bm25", "faiss-cpu")}


def stock_embeddings(model_dir: Path):
    """LangChain's HuggingFaceEmbeddings on the installed model folder (sentence-transformers, torch)."""
    import warnings

    import torch
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*HuggingFaceEmbeddings.*deprecated")  # langchain-huggingface pins huggingface-hub<2
    return HuggingFaceEmbeddings(model_name=str(model_dir), model_kwargs={"device": "cpu", "local_files_only": True},
                                 encode_kwargs={"normalize_embeddings": True, "prompt_name": "query"})


def build_langchain(corpus_rows: list[dict], vectors: np.ndarray, embedder, k: int):
    import jieba
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    class AssistEmbeddings(Embeddings):
        """Our embedder as a LangChain Embeddings: same model, runtime and E5 prefixes."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.encode_passages(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.encode_queries([text])[0].tolist()

    jieba.setLogLevel(60)
    texts = [r["text"] for r in corpus_rows]
    metadatas = [{"id": r["id"]} for r in corpus_rows]
    store = FAISS.from_embeddings(list(zip(texts, vectors.tolist())), AssistEmbeddings(), metadatas=metadatas)
    dense = store.as_retriever(search_kwargs={"k": k})
    bm25 = BM25Retriever.from_texts(texts, metadatas=metadatas, preprocess_func=jieba.lcut, k=k)
    return EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5]), bm25, dense, store


class Memo:
    """Query vectors computed once: lets both sides be timed without the shared encoding."""

    def __init__(self, inner):
        self.inner, self.model_id, self.dim, self.memo = inner, inner.model_id, inner.dim, {}

    def encode_queries(self, texts):
        return np.stack([self.memo[t] if t in self.memo else self.memo.setdefault(t, self.inner.encode_queries([t])[0]) for t in texts])

    def encode_passages(self, texts):
        return self.inner.encode_passages(texts)


def hits_at(ranked: list[str], relevant: set[str], k: int) -> bool:
    return bool(set(ranked[:k]) & relevant)


def compare(n_queries: int, k: int = 5, seed: int = 0, log=print) -> dict:
    from corpus import ensure_built, index_dir, insuranceqa_corpus

    from assist.index.store import open_index

    s = settings()
    corpus = insuranceqa_corpus(log=lambda *_: None)
    ensure_built("insuranceqa", corpus, log=log)
    embedder = query_embedder()
    index = open_index(s, index_dir("insuranceqa"), embedder)
    rows = read_jsonl(INSURANCEQA / "corpus.jsonl")
    queries = read_jsonl(INSURANCEQA / "queries.jsonl")
    if n_queries < len(queries):
        queries = random.Random(seed).sample(queries, n_queries)
    t0 = time.perf_counter()
    ensemble, bm25, dense, store = build_langchain(rows, corpus.vectors, embedder, k)
    setup_s = time.perf_counter() - t0
    log(f"LangChain pipeline ready in {setup_s:.1f}s (rank_bm25 + jieba.lcut over {len(rows)} answers, FAISS from cached vectors)")
    from assist.index.model import resolve_model

    stock = ensemble_over(store, bm25, stock_embeddings(Path(resolve_model(s.embedding.model, s.models_dir))), k)

    contestants = {
        "ours": lambda q: [h.chunk.article_id for h in index.search(q, k=k, mode="hybrid")],
        "langchain": lambda q: [d.metadata["id"] for d in stock.invoke(q)],
        "langchain_our_runtime": lambda q: [d.metadata["id"] for d in ensemble.invoke(q)],
    }
    for q in queries[:20]:  # warm-up
        for fn in contestants.values():
            fn(q["text"])
    times = {name: [] for name in contestants}
    hit = {name: {1: 0, 5: 0} for name in contestants}
    names = list(contestants)
    for i, q in enumerate(queries):
        rel = set(q["relevant"])
        for name in names[i % 3:] + names[:i % 3]:  # rotate who goes first
            start = time.perf_counter()
            ranked = contestants[name](q["text"])
            times[name].append((time.perf_counter() - start) * 1000)
            for kk in (1, 5):
                hit[name][kk] += hits_at(ranked, rel, kk)
    t_ours, t_theirs, t_same = times["ours"], times["langchain"], times["langchain_our_runtime"]
    ratio = np.asarray(t_theirs) / np.asarray(t_ours)

    # Retrieval alone: the same queries with their vectors memoised on both sides.
    memo = Memo(embedder)
    index.embedder = memo
    ensemble_m = build_langchain_memo(store, bm25, memo, k)
    sub = queries[: min(500, len(queries))]
    for q in sub:
        memo.encode_queries([q["text"]])
    r_ours, r_theirs, parts = [], [], {"bm25_retriever": [], "faiss_retriever": []}
    for q in sub:
        t = time.perf_counter(); index.search(q["text"], k=k, mode="hybrid"); r_ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); ensemble_m.invoke(q["text"]); r_theirs.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); bm25.invoke(q["text"]); parts["bm25_retriever"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); ensemble_m.retrievers[1].invoke(q["text"]); parts["faiss_retriever"].append((time.perf_counter() - t) * 1000)
    index.embedder = embedder
    n = len(queries)
    return {
        "queries": n, "k": k, "corpus": len(rows),
        "query_model": getattr(embedder, "query_model_id", embedder.model_id),
        "langchain_query_model": "HuggingFaceEmbeddings (sentence-transformers, torch fp32) on the same model folder",
        "versions": langchain_versions(),
        "langchain_setup_s": round(setup_s, 1),
        "latency_ratio": round(float(np.median(ratio)), 2),
        "latency_ratio_of_medians": round(float(np.median(t_theirs) / np.median(t_ours)), 2),
        "ours_ms": percentiles(t_ours), "langchain_ms": percentiles(t_theirs),
        "hit@1_ours": round(hit["ours"][1] / n, 4), "hit@5_ours": round(hit["ours"][5] / n, 4),
        "hit@1_langchain": round(hit["langchain"][1] / n, 4), "hit@5_langchain": round(hit["langchain"][5] / n, 4),
        "same_runtime": {
            "latency_ratio": round(float(np.median(np.asarray(t_same) / np.asarray(t_ours))), 2),
            "langchain_ms": percentiles(t_same),
            "hit@1_langchain": round(hit["langchain_our_runtime"][1] / n, 4),
            "hit@5_langchain": round(hit["langchain_our_runtime"][5] / n, 4),
        },
        "retrieval_only": {
            "queries": len(sub),
            "latency_ratio": round(float(np.median(np.asarray(r_theirs) / np.asarray(r_ours))), 2),
            "ours_ms": percentiles(r_ours), "langchain_ms": percentiles(r_theirs),
            "langchain_parts_ms": {k_: percentiles(v) for k_, v in parts.items()},
        },
        "loadavg": loadavg(),
    }


def ensemble_over(store, bm25, embeddings, k: int):
    """The same BM25 + FAISS ensemble over the same index, its queries embedded by `embeddings`."""
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.vectorstores import FAISS

    faiss_store = FAISS(embeddings, store.index, store.docstore, store.index_to_docstore_id)
    return EnsembleRetriever(retrievers=[bm25, faiss_store.as_retriever(search_kwargs={"k": k})], weights=[0.5, 0.5])


def build_langchain_memo(store, bm25, memo, k: int):
    """The same ensemble, its vector store embedding queries through the memo."""
    from langchain_core.embeddings import Embeddings

    class MemoEmbeddings(Embeddings):
        def embed_documents(self, texts):
            return memo.encode_passages(texts).tolist()

        def embed_query(self, text):
            return memo.encode_queries([text])[0].tolist()

    return ensemble_over(store, bm25, MemoEmbeddings(), k)


def print_report(r: dict) -> None:
    print(f"\nInsuranceQA-zh, {r['queries']} queries over {r['corpus']} answers, top {r['k']}, query model {r['query_model']}")
    print(f"{'':28}{'p50 ms':>9}{'p95 ms':>9}{'hit@1':>8}{'hit@5':>8}")
    print(f"{'assist hybrid':28}{r['ours_ms']['p50_ms']:>9.2f}{r['ours_ms']['p95_ms']:>9.2f}{r['hit@1_ours']:>8.3f}{r['hit@5_ours']:>8.3f}")
    print(f"{'LangChain, HuggingFaceEmb.':28}{r['langchain_ms']['p50_ms']:>9.2f}{r['langchain_ms']['p95_ms']:>9.2f}"
          f"{r['hit@1_langchain']:>8.3f}{r['hit@5_langchain']:>8.3f}")
    sr = r["same_runtime"]
    print(f"{'LangChain, our query runtime':28}{sr['langchain_ms']['p50_ms']:>9.2f}{sr['langchain_ms']['p95_ms']:>9.2f}"
          f"{sr['hit@1_langchain']:>8.3f}{sr['hit@5_langchain']:>8.3f}")
    ro = r["retrieval_only"]
    print(f"latency ratio LangChain/assist, median per query: {r['latency_ratio']}x (ratio of medians {r['latency_ratio_of_medians']}x); "
          f"with our query runtime on both sides: {sr['latency_ratio']}x")
    print(f"without the shared query encoding ({ro['queries']} queries): {ro['latency_ratio']}x "
          f"(assist {ro['ours_ms']['p50_ms']:.2f} ms, LangChain {ro['langchain_ms']['p50_ms']:.2f} ms: "
          f"BM25Retriever {ro['langchain_parts_ms']['bm25_retriever']['p50_ms']:.2f} + FAISS {ro['langchain_parts_ms']['faiss_retriever']['p50_ms']:.2f} ms)")
    print("versions: " + ", ".join(f"{k}=={v}" for k, v in r["versions"].items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = compare(args.queries, args.k)
    print_report(r)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
