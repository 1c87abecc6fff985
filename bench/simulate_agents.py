"""A week of agents, simulated: labelled conversations and questions the KB cannot answer are sent to a
running assist, and feedback is posted the way agents act on what they are shown.

    python bench/simulate_agents.py --url http://127.0.0.1:8000 --key dev-key [--suggestions 2000] [--seed 7]

Policy, per suggestion (`Policy` holds the numbers):
  * a labelled conversation (evals/queries.jsonl) whose gold article is in the top 3 answers: the agent
    uses it (`used`, a template `edited` now and then); otherwise the top answer is `dismissed`;
  * a question about a topic the sample KB lacks (bench/data/gap-questions.jsonl, 4 topics x 45): any
    answer shown is dismissed;
  * with probability `noise` the agent does something else (dismisses a good answer, uses a bad one).
Every suggestion's items get a `shown` event first. Then run `assist review --since 1d`: the gaps found
should be the four topics. `simulate()` is what tests call with an in-process client.
"""

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GAPS = ROOT / "bench" / "data" / "gap-questions.jsonl"
CONVERSATIONS = ROOT / "evals" / "queries.jsonl"


@dataclass(frozen=True)
class Policy:
    gap_share: float = 0.09  # of the suggestions: questions the KB cannot answer
    noise: float = 0.05
    edit_rate: float = 0.2  # a used template is edited this often
    shown_events: bool = True  # post a `shown` event per item (the review counts shown items from the log either way)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def simulate(post, n: int = 2000, seed: int = 7, policy: Policy = Policy(), conversations: list[dict] | None = None,
             gaps: list[dict] | None = None) -> dict:
    """Drive `post(path, body) -> (status, json)` with n suggestions and their feedback; returns counts."""
    rng = random.Random(seed)
    conversations = conversations if conversations is not None else _read(CONVERSATIONS)
    gaps = gaps if gaps is not None else _read(GAPS)
    n_gaps = max(len(gaps), round(n * policy.gap_share)) if gaps else 0
    plan = [("gap", gaps[i % len(gaps)]) for i in range(n_gaps)] + [("case", rng.choice(conversations)) for _ in range(n - n_gaps)]
    rng.shuffle(plan)
    counts = {"suggestions": 0, "gap_questions": 0, "shown": 0, "used": 0, "edited": 0, "dismissed": 0, "errors": 0}
    for k, (what, item) in enumerate(plan):
        session = f"sim-{seed}-{k:05d}"
        conversation = [{"role": "customer", "text": item["text"]}] if what == "gap" else item["conversation"]
        status, out = post("/v1/suggest", {"conversation": conversation, "customer": item.get("customer") or {}, "session_id": session})
        if status != 200:
            counts["errors"] += 1
            continue
        counts["suggestions"] += 1
        counts["gap_questions"] += what == "gap"
        base = {"session_id": session, "request_id": out["request_id"], "intent": out["intent"]["name"], "index_version": out["index_version"]}

        def event(name: str, kind: str, item_id: str, base: dict = base) -> None:
            s, _ = post("/v1/feedback", {**base, "event": name, "kind": kind, "suggestion_id": item_id})
            counts[name if s == 201 else "errors"] += 1

        answers = [a["article_id"] for a in out["answers"]]
        templates = [t["template_id"] for t in out["templates"]]
        if policy.shown_events:
            for a in answers:
                event("shown", "article", a)
            for t in templates:
                event("shown", "template", t)
        good = what == "case" and any(a in item.get("relevant", ()) for a in answers[:3])
        if rng.random() < policy.noise:
            good = not good
        if good and answers:
            gold = next((a for a in answers[:3] if a in item.get("relevant", ())), answers[0])
            event("used", "article", gold)
            if templates:
                event("edited" if rng.random() < policy.edit_rate else "used", "template", templates[0])
        elif answers:
            event("dismissed", "article", answers[0])
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--key", default="dev-key")
    ap.add_argument("--suggestions", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    import httpx

    with httpx.Client(base_url=args.url, headers={"X-API-Key": args.key}, timeout=30) as client:
        def post(path: str, body: dict):
            r = client.post(path, json=body)
            return r.status_code, (r.json() if r.headers.get("content-type", "").startswith("application/json") else {})

        start = time.perf_counter()
        counts = simulate(post, args.suggestions, args.seed)
    print(json.dumps({**counts, "seconds": round(time.perf_counter() - start, 1)}, ensure_ascii=False))
    if counts["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
