"""Does feedback-weighted ranking help? Replay labelled conversations with an agent policy, turn the
feedback into acceptance rates, and measure the other conversations before and after.

    python bench/feedback_ranking.py [--weights 0,0.02,0.05,0.1,0.2] [--repeats 5] [--noise 0.05]

Two folds: the labelled conversations (evals/queries.jsonl) split by position parity. One fold is
"last week": replayed `--repeats` times through the suggest pipeline, with feedback as agents give it
(the gold article used when it is in the top 3, else the top answer dismissed; with probability
`--noise` the other way round), logged as the suggestion log would. Its rates (assist.priors) then rank
the other fold, whose answer hit@1 / hit@3 / MRR@10 are compared with weight 0. The mean of both folds
is printed per weight. The product default stays weight 0 unless this shows a gain.
"""

import argparse
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CONVERSATIONS, query_embedder, read_jsonl, settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="0,0.02,0.05,0.1,0.2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    from assist.feedback import StoredFeedback
    from assist.index.store import open_index
    from assist.priors import compute_nudges
    from assist.suggest.pipeline import Suggester
    from assist.suggestlog import SuggestionRecord

    s = settings()
    suggester = Suggester(open_index(s, embedder=query_embedder()), s.suggest)
    cases = [c for c in read_jsonl(CONVERSATIONS) if c.get("relevant")]
    folds = [cases[0::2], cases[1::2]]
    weights = [float(w) for w in args.weights.split(",")]
    rng = random.Random(args.seed)
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    results = {w: [] for w in weights}
    for k in (0, 1):
        history, test = folds[k], folds[1 - k]
        logged, feedback = [], []
        for _ in range(args.repeats):
            for n, case in enumerate(history):
                out = suggester.suggest(case["conversation"], case.get("customer") or {})
                answers = [a.article_id for a in out.answers]
                rid = f"{k}-{n}-{len(logged)}"
                logged.append(SuggestionRecord(rid, rid, None, "", out.intent.name, 0, out.abstained, False, tuple(answers),
                                               tuple(t.template_id for t in out.templates), None, 0, "", "", None, now))
                good = any(a in case["relevant"] for a in answers[:3])
                if rng.random() < args.noise:
                    good = not good
                if good and answers:
                    item = next((a for a in answers[:3] if a in case["relevant"]), answers[0])
                    feedback.append(StoredFeedback("used", item, "article", request_id=rid, created_at=now))
                elif answers:
                    feedback.append(StoredFeedback("dismissed", answers[0], "article", request_id=rid, created_at=now))
        for w in weights:
            r = s.feedback_ranking
            suggester.nudges = compute_nudges(logged, feedback, datetime.now(timezone.utc), r.half_life_days, r.strength, w)
            hit1 = hit3 = mrr = 0.0
            for case in test:
                ids = [a.article_id for a in suggester.suggest(case["conversation"], case.get("customer") or {}, top_k=10).answers]
                ranks = [i for i, a in enumerate(ids) if a in case["relevant"]]
                hit1 += bool(ranks) and ranks[0] == 0
                hit3 += bool(ranks) and ranks[0] < 3
                mrr += 1 / (ranks[0] + 1) if ranks else 0
            results[w].append((hit1 / len(test), hit3 / len(test), mrr / len(test)))
        suggester.nudges = {}
    print(f"{len(cases)} labelled conversations, 2 folds, history replayed {args.repeats}x, noise {args.noise}")
    print("weight  hit@1   hit@3   mrr@10")
    for w in weights:
        h1, h3, m = (sum(x[i] for x in results[w]) / 2 for i in range(3))
        print(f"{w:<7} {h1:.3f}   {h3:.3f}   {m:.3f}")


if __name__ == "__main__":
    main()
