"""What the suggestion log costs: per request on the request path, and `assist review` over 100k rows.

    python bench/suggestion_log.py [--rows 100000]

1. Request path: `api.routes.suggest.log_suggestion` (record + int8 vector + queue append) on real
   Suggestion objects of the labelled conversations, 20,000 calls; the writer's thread drains meanwhile.
2. Review: a store filled with `--rows` suggestion-log rows over 7 days (the sample KB's conversations
   and the gap questions, each row its own session; 40% of the rows are failures with distinct words, so
   the gap clustering meets its 5,000-text cap) and their feedback; then `build_review` timed whole.
"""

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import conversations, loadavg, percentiles, query_embedder, read_jsonl, settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    import numpy as np

    from api.routes.suggest import log_suggestion
    from assist.feedback import FeedbackEvent, FeedbackStore
    from assist.index.store import open_index
    from assist.review import build_review
    from assist.suggest.pipeline import Suggester
    from assist.suggestlog import LogWriter, SuggestionRecord, quantize

    s = settings()
    index = open_index(s, embedder=query_embedder())
    suggester = Suggester(index, s.suggest)
    results = [suggester.suggest(b["conversation"], b["customer"]) for b in conversations()]
    tmp = Path(tempfile.mkdtemp())
    store = FeedbackStore(tmp / "log.db")
    writer = LogWriter(store)
    times = []
    for n in range(20_000):
        r = results[n % len(results)]
        start = time.perf_counter()
        log_suggestion(writer, f"req-{n}", f"s-{n}", {"id": n}, r, 0.007, "bench")
        times.append((time.perf_counter() - start) * 1000)
    writer.close()
    print(f"request path: log_suggestion {percentiles(times)} over {len(times)} calls; rows written {len(store.suggestions('2000'))}; "
          f"load {loadavg()}")

    gaps = [g["text"] for g in read_jsonl(Path(__file__).resolve().parent / "data" / "gap-questions.jsonl")]
    texts = [r.query.text for r in results] + gaps
    vectors = index.embedder.encode_queries(texts)
    rng = np.random.default_rng(7)
    end = datetime.now(timezone.utc)
    big = FeedbackStore(tmp / "week.db")
    batch, feedback = [], []
    for n in range(args.rows):
        k = n % len(texts)
        failed = rng.random() < 0.4
        words = texts[k] + (f" 第{n}次" if failed else "")  # failures in their own words: distinct texts
        v = vectors[k] + (rng.normal(scale=0.02, size=vectors.shape[1]) if failed else 0)
        created = (end - timedelta(seconds=float(rng.uniform(0, 7 * 86400)))).isoformat(timespec="milliseconds")
        batch.append(SuggestionRecord(f"r{n}", f"s{n}", None, words, "out_of_scope" if failed else "refund_status", 0.9, failed, False,
                                      ("refund-timing",), ("tpl-refund-timing",), 0.9, 7.0, "v", "bench", None, created,
                                      quantize(v / np.linalg.norm(v))))
        if not failed:
            feedback.append(FeedbackEvent("used", "refund-timing", "article", session_id=f"s{n}", request_id=f"r{n}"))
        if len(batch) == 5000:
            big.add_suggestions(batch)
            batch = []
    big.add_suggestions(batch)
    for f in feedback[:20_000]:
        big.add(f)
    start = time.perf_counter()
    report = build_review(big, end - timedelta(days=7), end + timedelta(seconds=1), index.kb, index, index.embedder)
    seconds = time.perf_counter() - start
    print(f"review over {report['totals']['suggestions']} logged suggestions ({len(feedback[:20_000])} feedback events): {seconds:.1f} s, "
          f"{len(report['gaps'])} gaps listed; load {loadavg()}")


if __name__ == "__main__":
    main()
