"""Grid over dense + BM25 fusion on an external retrieval set (InsuranceQA-zh by default).

    python bench/tune_fusion.py [--corpus C.jsonl --queries Q.jsonl]

Tunes on the first half of the queries and reports the second half, so the chosen weights are not
graded on the queries that chose them. Uses the eval index `assist eval retrieval` builds (cached vectors).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assist.config import HybridSettings, get_settings  # noqa: E402
from assist.index.embed import embedder_from_settings  # noqa: E402
from assist.index.search import fuse  # noqa: E402
from evals.io import read_jsonl  # noqa: E402
from evals.metrics import evaluate  # noqa: E402
from evals.retrieval import index_corpus  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "insuranceqa-zh"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus.jsonl")
    ap.add_argument("--queries", type=Path, default=SHARED / "queries.jsonl")
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    s = get_settings()
    emb = embedder_from_settings(s, build=True)  # queries on the configured runtime, as the product encodes them
    index = index_corpus(s, args.corpus, emb)
    rows = read_jsonl(args.queries)
    vecs = np.vstack([emb.encode_queries([r["text"] for r in rows[i : i + 64]]) for i in range(0, len(rows), 64)])
    V = np.asarray(index.vectors)
    cands = []
    for r, q in zip(rows, vecs):
        dense_all = V @ q
        bm = index.lexical.scores(r["text"])
        top_d = np.argpartition(-dense_all, args.depth)[: args.depth]
        top_b = np.argpartition(-bm, args.depth)[: args.depth]
        rowset = set(top_d.tolist()) | {int(i) for i in top_b if bm[i] > 0}
        cands.append(({i: float(dense_all[i]) for i in rowset}, {i: float(bm[i]) for i in top_b if bm[i] > 0}, rowset, r["relevant"]))
    ids = [c.article_id for c in index.chunks]
    half = len(cands) // 2

    def score(settings, part):
        runs = []
        for d, b, rowset, rel in part:
            if settings is None:
                fused = d
            elif isinstance(settings, tuple):  # experimental normalisations
                kind, w = settings
                rs = list(rowset)
                dv = np.array([d[i] for i in rs]); bv = np.array([b.get(i, 0.0) for i in rs])
                if kind == "z":
                    dn = (dv - dv.mean()) / (dv.std() + 1e-9); bn = (bv - bv.mean()) / (bv.std() + 1e-9)
                else:  # min-max over the candidates
                    dn = (dv - dv.min()) / (np.ptp(dv) + 1e-9); bn = (bv - bv.min()) / (np.ptp(bv) + 1e-9)
                fused = dict(zip(rs, (dn + w * bn).tolist()))
            else:
                fused = fuse({k: v for k, v in d.items() if k in set(sorted(d, key=lambda k: -d[k])[: args.depth])}, b, rowset, settings)
            ranked = [ids[i] for i in sorted(fused, key=lambda i: -fused[i])[:10]]
            runs.append((ranked, rel))
        return evaluate(runs, ["hit@1", "hit@5", "mrr@10"])

    grid = [("dense only", None)]
    grid += [(f"linear w={w}", HybridSettings(method="linear", bm25_weight=w)) for w in (0.01, 0.02, 0.03)]
    grid += [(f"rrf k={k} w={w}", HybridSettings(method="rrf", rrf_k=k, bm25_weight=w)) for k in (10,) for w in (0.2, 0.35)]
    grid += [(f"{k} w={w}", (k, w)) for k in ("z", "minmax") for w in (0.05, 0.1, 0.15, 0.2, 0.3)]
    print(f"{'setting':22} {'tune hit@1':>10} {'hit@5':>7} {'mrr@10':>7} | {'held-out hit@1':>14} {'hit@5':>7} {'mrr@10':>7}")
    for name, settings in grid:
        a, b = score(settings, cands[:half]), score(settings, cands[half:])
        print(f"{name:22} {a['hit@1']:>10.3f} {a['hit@5']:>7.3f} {a['mrr@10']:>7.3f} | {b['hit@1']:>14.3f} {b['hit@5']:>7.3f} {b['mrr@10']:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
