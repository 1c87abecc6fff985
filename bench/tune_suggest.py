"""Grid over the suggest pipeline's knobs on labelled conversations (prints a table; changes nothing).

    python bench/tune_suggest.py [--dataset evals/queries.jsonl] [--index-dir DIR]

The index defaults to the eval index `assist eval run` builds of the sample KB.

Query vectors are memoised, so each grid point costs only retrieval and ranking.
"""

import argparse
import functools
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assist.config import get_settings  # noqa: E402
from assist.index.embed import describe, embedder_from_settings  # noqa: E402
from assist.index.store import open_index  # noqa: E402
from assist.suggest.pipeline import Suggester  # noqa: E402
from evals.conversations import replay, score_records  # noqa: E402
from evals.io import eval_index_dir, read_jsonl  # noqa: E402


class Memo:
    """The embedder with query vectors memoised: each grid point re-encodes nothing."""

    def __init__(self, inner):
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self.encode_passages = inner.encode_passages
        self._one = functools.lru_cache(maxsize=None)(lambda text: inner.encode_queries([text])[0])

    def encode_queries(self, texts):
        import numpy as np

        return np.stack([self._one(t) for t in texts])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="evals/queries.jsonl")
    ap.add_argument("--index-dir", type=Path, help="index to replay against [default: the sample KB's eval index]")
    floats = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    ap.add_argument("--boost", type=floats, default=[0.1, 0.2, 0.3], help="intent_boost values to try")
    ap.add_argument("--abstain", type=floats, default=[0.8], help="abstain_min_dense values to try")
    ap.add_argument("--abstain-oos", type=floats, default=[0.86, 0.88], help="abstain_min_dense_oos values to try")
    args = ap.parse_args()
    s = get_settings()
    inner = embedder_from_settings(s)
    emb = Memo(inner)
    index = open_index(s, args.index_dir or eval_index_dir(s), emb)
    base = Suggester(index, s.suggest)
    rows = read_jsonl(Path(args.dataset))
    cols = ["answer_hit@1", "answer_hit@3", "answer_mrr@10", "template_hit@3", "intent_accuracy", "oos_recall",
            "oos_precision", "escalation_recall", "abstain_rate_in_scope", "abstain_rate_oos"]
    print(f"model: {describe(inner)}")
    print("bm25_w boost ab_in ab_oos " + " ".join(f"{c[-14:]:>14}" for c in cols))
    grid = itertools.product([s.hybrid.bm25_weight], args.boost, args.abstain, args.abstain_oos)
    for w, boost, ab_in, ab_oos in grid:
        index.hybrid = s.hybrid.model_copy(update={"bm25_weight": w})
        sug = base.with_settings(intent_boost=boost, abstain_min_dense=ab_in, abstain_min_dense_oos=ab_oos)
        m = score_records(replay(sug, rows, "full"))
        print(f"{w:6} {boost:5} {ab_in:5} {ab_oos:5}  " + " ".join(f"{m[c]:>14.3f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
