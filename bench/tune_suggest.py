"""Grid over the suggest pipeline's knobs on labelled conversations (prints a table; changes nothing).

    python bench/tune_suggest.py [--dataset evals/queries.jsonl] [--index-dir .assist/eval-indexes/kb]

Query vectors are memoised, so each grid point costs only retrieval and ranking.
"""

import argparse
import functools
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assist.config import get_settings  # noqa: E402
from assist.index.embed import make_embedder  # noqa: E402
from assist.index.store import load_index  # noqa: E402
from assist.suggest.pipeline import Suggester  # noqa: E402
from evals.harness import replay, score_records  # noqa: E402


class Memo:
    def __init__(self, inner):
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self.encode_passages = inner.encode_passages

    @functools.lru_cache(maxsize=None)
    def _one(self, text):
        return self.inner.encode_queries([text])[0]

    def encode_queries(self, texts):
        import numpy as np

        return np.stack([self._one(t) for t in texts])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="evals/queries.jsonl")
    ap.add_argument("--index-dir", default=".assist/eval-indexes/kb")
    floats = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    ap.add_argument("--oos", type=floats, default=[0.87, 0.88], help="intent out-of-scope thresholds to try")
    ap.add_argument("--abstain", type=floats, default=[0.8], help="abstain_min_dense values to try")
    ap.add_argument("--abstain-oos", type=floats, default=[0.86, 0.88], help="abstain_min_dense_oos values to try")
    args = ap.parse_args()
    s = get_settings()
    emb = Memo(make_embedder(s.embedding.model, backend=s.embedding.backend, models_dir=s.models_dir,
                             query_backend=s.embedding.query_backend))
    index = load_index(Path(args.index_dir), emb, dense=s.dense, hybrid=s.hybrid)
    base = Suggester(index, s.suggest)
    rows = [json.loads(line) for line in open(args.dataset, encoding="utf-8") if line.strip()]
    cols = ["answer_hit@1", "answer_hit@3", "answer_mrr@10", "template_hit@3", "intent_accuracy", "oos_recall",
            "oos_precision", "escalation_recall", "abstain_rate_in_scope", "abstain_rate_oos"]
    print(f"query encoder: {emb.inner.__dict__.get('query_model_id', emb.model_id)}")
    print("bm25_w boost oos_t ab_in ab_oos " + " ".join(f"{c[-14:]:>14}" for c in cols))
    grid = itertools.product([s.hybrid.bm25_weight], [s.suggest.intent_boost], args.oos, args.abstain, args.abstain_oos)
    for w, boost, oos, ab_in, ab_oos in grid:
        index.hybrid = s.hybrid.model_copy(update={"bm25_weight": w})
        sug = base.with_settings(intent_boost=boost, abstain_min_dense=ab_in, abstain_min_dense_oos=ab_oos)
        sug.detector.oos_threshold = oos
        m = score_records(replay(sug, rows, "full"))
        print(f"{w:6} {boost:5} {oos:5} {ab_in:5} {ab_oos:5}  " + " ".join(f"{m[c]:>14.3f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
