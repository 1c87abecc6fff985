"""Retrieval metrics as pure functions over one ranked list and its relevance judgements.

`ranked` is a list of ids, best first (duplicates count once, at their first place); `relevant` maps
id -> grade (> 0 is relevant) or is a plain collection of relevant ids.
"""

import math
from collections.abc import Collection, Mapping


def _grades(relevant) -> dict[str, float]:
    if isinstance(relevant, Mapping):
        return {k: float(v) for k, v in relevant.items() if v > 0}
    return {k: 1.0 for k in relevant}


def _dedup(ranked: list[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def hit_rate(ranked: list[str], relevant: Collection[str] | Mapping[str, float], k: int) -> float:
    rel = _grades(relevant)
    return 1.0 if any(r in rel for r in _dedup(ranked)[:k]) else 0.0


def reciprocal_rank(ranked: list[str], relevant, k: int) -> float:
    rel = _grades(relevant)
    for i, r in enumerate(_dedup(ranked)[:k], 1):
        if r in rel:
            return 1.0 / i
    return 0.0


def recall(ranked: list[str], relevant, k: int) -> float:
    rel = _grades(relevant)
    if not rel:
        return 0.0
    return len(set(_dedup(ranked)[:k]) & set(rel)) / len(rel)


def ndcg(ranked: list[str], relevant, k: int) -> float:
    """nDCG with linear gains (grade / log2(rank + 1)), as trec_eval computes it."""
    rel = _grades(relevant)
    dcg = sum(rel.get(r, 0.0) / math.log2(i + 1) for i, r in enumerate(_dedup(ranked)[:k], 1))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Ids by descending score; ties broken by descending id, as trec_eval does."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


METRICS = {"hit": hit_rate, "mrr": reciprocal_rank, "recall": recall, "ndcg": ndcg}


def parse_metric(name: str):
    """'ndcg@10' -> (ndcg function, 10)."""
    base, _, k = name.partition("@")
    if base not in METRICS or not k.isdigit():
        raise ValueError(f"unknown metric '{name}' (use e.g. hit@5, mrr@10, ndcg@10, recall@5)")
    return METRICS[base], int(k)


def evaluate(runs: list[tuple[list[str], object]], metrics: list[str]) -> dict[str, float]:
    """Mean of each metric over (ranked, relevant) pairs."""
    out = {}
    for name in metrics:
        fn, k = parse_metric(name)
        out[name] = sum(fn(ranked, rel, k) for ranked, rel in runs) / len(runs) if runs else 0.0
    return out


# --- classification --------------------------------------------------------------------------------


def precision_recall_f1(pairs: list[tuple[bool, bool]]) -> dict[str, float]:
    """Precision, recall and F1 of (gold, predicted) booleans."""
    tp = sum(1 for g, p in pairs if g and p)
    fp = sum(1 for g, p in pairs if not g and p)
    fn = sum(1 for g, p in pairs if g and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}


def macro_f1(gold: list[str], pred: list[str]) -> float:
    """F1 per gold label, averaged over the gold labels."""
    labels = sorted(set(gold))
    if not labels:
        return 0.0
    return sum(precision_recall_f1([(g == label, p == label) for g, p in zip(gold, pred)])["f1"] for label in labels) / len(labels)
