"""Server-side latency of a help-centre search (`HelpCentre.search`, what GET /v1/public/search runs)
at 10k chunks, one intra-op thread.

    python bench/public_search.py [--size 10k] [--passes 2]

The benchmark index of bench/corpus.py (the sample KB + InsuranceQA + synthetic passages) is loaded
twice: as built (only the sample KB's public rows are searchable: customers see a part of the index)
and with every article row public (the worst case: the dense search goes through FAISS and filters,
instead of scoring a small block exactly). The queries are the last customer turns of the labelled
conversations (evals/queries.jsonl) plus their prefixes of 2-4 characters, as search-as-you-type sends them.
Prints p50 / p95 / p99 in ms per configuration, and the abstain rate.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import conversations, loadavg, percentiles, query_embedder, settings  # noqa: E402


def queries() -> list[str]:
    out = []
    for body in conversations():
        last = next(t["text"] for t in reversed(body["conversation"]) if t["role"] == "customer")[:100]
        out += [last, last[:2], last[:4]]
    return out


def run(help_centre, texts: list[str], passes: int) -> dict:
    for t in texts[:30]:  # warm-up
        help_centre.search(t)
    times, abstained = [], 0
    for _ in range(passes):
        for t in texts:
            start = time.perf_counter()
            result = help_centre.search(t)
            times.append((time.perf_counter() - start) * 1000)
            abstained += result.abstained
    return {**percentiles(times), "searches": len(times), "abstain_rate": round(abstained / len(times), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="10k")
    ap.add_argument("--passes", type=int, default=2)
    args = ap.parse_args()
    from corpus import ensure_index, index_dir

    from assist.helpcentre import HelpCentre
    from assist.index.store import open_index
    from assist.suggest.pipeline import Suggester

    meta = ensure_index(args.size)
    s = settings()
    index = open_index(s, index_dir(args.size), query_embedder())
    texts = queries()
    public_rows = sum(c.public for c in index.chunks)
    print(f"{args.size}: {len(index.chunks)} chunks ({meta['dense_kind']}), {len(texts)} queries x {args.passes}, load {loadavg()}")
    as_built = run(HelpCentre(Suggester(index, s.suggest), index.path / "assets", s.public_results), texts, args.passes)
    print(f"  public rows as built ({public_rows}): {as_built}")
    everything = open_index(s, index_dir(args.size), index.embedder)
    everything.chunks = [dataclasses.replace(c, public=True) if c.kind in ("article", "question") else c for c in everything.chunks]
    worst = run(HelpCentre(Suggester(everything, s.suggest), everything.path / "assets", s.public_results), texts, args.passes)
    print(f"  every article row public ({sum(c.public for c in everything.chunks)}): {worst}")


if __name__ == "__main__":
    main()
