"""Should queries be encoded with int8 while passages stay fp32? Latency and quality, one run.

    python bench/query_backend.py [--queries 2000] [--backends onnx,onnx-int8] [--json out.json]

Passages are always the index's fp32 (onnx) vectors; only the query encoder changes
(`ASSIST_EMBEDDING__QUERY_BACKEND`). Measured per query backend, in one process:
  * single-query encode latency on the suggest queries of evals/queries.jsonl (interleaved);
  * InsuranceQA-zh (8,000 answers): dense and hybrid hit@1 / hit@5;
  * the sample KB's 355 labelled conversations through the whole suggest pipeline (`assist eval run`'s
    "full" variant): answer hit@3, template hit@3, intent accuracy, out-of-scope recall, escalation
    recall, abstain rates.
The int8 model is whatever `assist model install` put in ASSIST_MODELS_DIR.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import INSURANCEQA, conversations, embedder, loadavg, percentiles, read_jsonl, settings  # noqa: E402

CONVERSATION_METRICS = ("answer_hit@1", "answer_hit@3", "template_hit@3", "intent_accuracy", "oos_recall",
                        "oos_precision", "escalation_recall", "abstain_rate_in_scope", "abstain_rate_oos")


def kb_corpus(log=print):
    from corpus import Corpus, passage_model_id, real_chunks, real_vectors

    kb, words, kb_chunks, _ = real_chunks()
    return Corpus(kb_chunks, real_vectors(kb_chunks, passage_model_id(), log), len(kb_chunks), 0, kb, words)


def run(n_queries: int, backends: list[str], log=print) -> dict:
    from corpus import ensure_built, index_dir, insuranceqa_corpus

    from assist.index.store import open_index
    from assist.suggest.pipeline import Suggester, parse_turns
    from assist.suggest.query import build_query
    from evals.conversations import replay, score_records

    s = settings()
    ensure_built("insuranceqa", insuranceqa_corpus(log=lambda *_: None), log=log)
    ensure_built("kb", kb_corpus(log=lambda *_: None), log=log)
    embedders = {b: embedder(threads=1, query_backend=b) for b in backends}
    out = {"backends": {}, "passage_model": next(iter(embedders.values())).model_id}

    # 1. encode latency, interleaved
    texts = [q for q in (build_query(parse_turns(b["conversation"])).text for b in conversations()) if q]
    for emb in embedders.values():
        for t in texts[:20]:
            emb.encode_queries([t])
    times = {b: [] for b in backends}
    for t in texts:
        for b, emb in embedders.items():
            start = time.perf_counter()
            emb.encode_queries([t])
            times[b].append((time.perf_counter() - start) * 1000)

    # 2. InsuranceQA-zh retrieval, fp32 passages
    queries = read_jsonl(INSURANCEQA / "queries.jsonl")
    if n_queries < len(queries):
        queries = random.Random(0).sample(queries, n_queries)
    iqa = {b: open_index(s, index_dir("insuranceqa"), emb) for b, emb in embedders.items()}
    # 3. labelled conversations over the sample KB
    rows = read_jsonl(Path(__file__).resolve().parents[1] / "evals" / "queries.jsonl")
    for b, emb in embedders.items():
        res = {"query_model": getattr(emb, "query_model_id", emb.model_id), "encode_ms": percentiles(times[b])}
        index = iqa[b]
        for mode in ("dense", "hybrid"):
            h1 = h5 = 0
            for q in queries:
                ranked = [h.chunk.article_id for h in index.search(q["text"], k=5, mode=mode)]
                rel = set(q["relevant"])
                h1 += bool(set(ranked[:1]) & rel)
                h5 += bool(set(ranked) & rel)
            res[f"insuranceqa_{mode}"] = {"hit@1": round(h1 / len(queries), 4), "hit@5": round(h5 / len(queries), 4)}
        kb_index = open_index(s, index_dir("kb"), emb)
        m = score_records(replay(Suggester(kb_index, s.suggest), rows, "full"))
        res["conversations"] = {k: m[k] for k in CONVERSATION_METRICS}
        out["backends"][b] = res
        log(f"{b:9} encode p50 {res['encode_ms']['p50_ms']:6.2f} ms | InsuranceQA hybrid hit@5 {res['insuranceqa_hybrid']['hit@5']:.3f} "
            f"dense {res['insuranceqa_dense']['hit@5']:.3f} | conversations ans@3 {m['answer_hit@3']:.3f} "
            f"intent {m['intent_accuracy']:.3f} oos_recall {m['oos_recall']:.3f} esc_recall {m['escalation_recall']:.3f}")
    if len(backends) == 2:
        a, b = backends
        out["encode_speedup"] = round(float(np.median(np.asarray(times[a]) / np.asarray(times[b]))), 2)
    out["insuranceqa_queries"] = len(queries)
    out["loadavg"] = loadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--backends", default="onnx,onnx-int8")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.queries, args.backends.split(","))
    if "encode_speedup" in r:
        print(f"query encode speed-up {args.backends.replace(',', ' -> ')}: {r['encode_speedup']}x (median per query)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
