"""Replay labelled queries through the retrievers and score them (DESIGN §6)."""

import json
import time
from pathlib import Path

import numpy as np

from assist.errors import AssistError
from assist.index.chunk import Chunk, chunk_id
from assist.index.store import Index, build_from_chunks, load_index
from evals.metrics import evaluate

RETRIEVAL_METRICS = ["hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "recall@5"]


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise AssistError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def corpus_chunks(corpus: list[dict]) -> list[Chunk]:
    """One chunk per external document (InsuranceQA answers are short)."""
    out = []
    for row in corpus:
        title = row.get("title") or ""
        path = (title,) if title else ()
        out.append(Chunk(chunk_id(row["id"], path, row["text"]), str(row["id"]), "article", title, path, row["text"]))
    return out


def index_corpus(corpus_path: Path, work_dir: Path, embedder, **build_args) -> Index:
    """Build (or reuse, through the embedding cache) an index of an external corpus.jsonl."""
    chunks = corpus_chunks(read_jsonl(corpus_path))
    build_from_chunks(chunks, work_dir, embedder, keep_versions=1, **build_args)
    return load_index(work_dir, embedder)


def run_retrieval(index: Index, queries: list[dict], variants: list[str], k: int = 10) -> dict:
    """Metrics and latency per variant; a hit is any relevant id among the top-k distinct documents."""
    report = {"n_queries": len(queries), "variants": {}}
    for variant in variants:
        runs, latencies = [], []
        for q in queries:
            start = time.perf_counter()
            hits = index.search(q["text"], k=k * 3, mode=variant)
            latencies.append((time.perf_counter() - start) * 1000)
            ranked = list(dict.fromkeys(h.chunk.article_id for h in hits))[:k]
            runs.append((ranked, q["relevant"]))
        scores = evaluate(runs, RETRIEVAL_METRICS)
        scores["latency_ms_p50"] = float(np.percentile(latencies, 50))
        scores["latency_ms_p95"] = float(np.percentile(latencies, 95))
        report["variants"][variant] = {name: round(v, 4) for name, v in scores.items()}
    return report


# --- labelled conversations over a KB -------------------------------------------------------------

CONVERSATION_VARIANTS = ("full", "hybrid", "dense", "bm25", "last_turn")
ANSWER_METRICS = ["hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "recall@5"]
TEMPLATE_METRICS = ["hit@1", "hit@3"]


def _variant_args(variant: str) -> dict:
    """full = the product; the others switch one piece off so each piece's gain is visible."""
    return {
        "full": {"mode": "hybrid"},
        "hybrid": {"mode": "hybrid", "abstain": False},
        "dense": {"mode": "dense", "abstain": False},
        "bm25": {"mode": "bm25", "abstain": False},
        "last_turn": {"mode": "hybrid", "last_turn_only": True},
    }[variant]


def replay(suggester, rows: list[dict], variant: str) -> list[dict]:
    """One record per labelled conversation: what the pipeline returned, next to the gold labels."""
    args = _variant_args(variant)
    s = suggester
    if args.pop("abstain", True) is False:
        s = suggester.with_settings(abstain_min_dense=-1.0, abstain_min_dense_oos=-1.0)
    records = []
    for row in rows:
        start = time.perf_counter()
        out = s.suggest(row["conversation"], row.get("customer") or {}, top_k=10, **args)
        latency = (time.perf_counter() - start) * 1000
        records.append({
            "id": row["id"],
            "query": out.query.text,
            "gold_intent": row.get("intent"),
            "intent": out.intent.name,
            "intent_confidence": out.intent.confidence,
            "intent_similarity": out.intent.similarity,
            "relevant": row.get("relevant") or [],
            "answers": [a.article_id for a in out.answers],
            "top_similarity": out.top_similarity,
            "abstained": out.abstained,
            "gold_templates": row.get("templates") or [],
            "templates": [t.template_id for t in out.templates],
            "gold_escalate": bool(row.get("escalate")),
            "escalate": out.emotion.escalate,
            "emotion_level": out.emotion.level,
            "tags": row.get("tags") or [],
            "latency_ms": latency,
        })
    return records


def _prf(pairs: list[tuple[bool, bool]]) -> dict[str, float]:
    tp = sum(1 for g, p in pairs if g and p)
    fp = sum(1 for g, p in pairs if not g and p)
    fn = sum(1 for g, p in pairs if g and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}


def macro_f1(gold: list[str], pred: list[str]) -> float:
    labels = sorted(set(gold))
    return sum(_prf([(g == label, p == label) for g, p in zip(gold, pred)])["f1"] for label in labels) / len(labels) if labels else 0.0


def score_records(records: list[dict]) -> dict:
    """Answer and template metrics over in-scope rows; intent, out-of-scope and escalation over all."""
    in_scope = [r for r in records if r["relevant"]]
    with_templates = [r for r in records if r["gold_templates"]]
    answers = evaluate([(r["answers"], r["relevant"]) for r in in_scope], ANSWER_METRICS)
    templates = evaluate([(r["templates"], r["gold_templates"]) for r in with_templates], TEMPLATE_METRICS)
    gold = [r["gold_intent"] or "" for r in records]
    pred = [r["intent"] for r in records]
    oos = _prf([(g == "out_of_scope", p == "out_of_scope") for g, p in zip(gold, pred)])
    esc = _prf([(r["gold_escalate"], r["escalate"]) for r in records])
    lat = [r["latency_ms"] for r in records]
    out = {f"answer_{k}": v for k, v in answers.items()}
    out.update({f"template_{k}": v for k, v in templates.items()})
    out.update({
        "intent_accuracy": sum(g == p for g, p in zip(gold, pred)) / len(records) if records else 0.0,
        "intent_macro_f1": macro_f1(gold, pred),
        "oos_precision": oos["precision"], "oos_recall": oos["recall"],
        "escalation_precision": esc["precision"], "escalation_recall": esc["recall"],
        "abstain_rate_in_scope": sum(r["abstained"] for r in in_scope) / len(in_scope) if in_scope else 0.0,
        "abstain_rate_oos": (sum(r["abstained"] for r in records if r["gold_intent"] == "out_of_scope")
                             / max(1, sum(r["gold_intent"] == "out_of_scope" for r in records))),
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat else 0.0,
        "latency_ms_p95": float(np.percentile(lat, 95)) if lat else 0.0,
    })
    return {k: round(v, 4) for k, v in out.items()}


def per_intent(records: list[dict]) -> dict[str, dict]:
    out = {}
    for name in sorted({r["gold_intent"] for r in records if r["gold_intent"]}):
        rows = [r for r in records if r["gold_intent"] == name]
        scoped = [r for r in rows if r["relevant"]]
        out[name] = {
            "n": len(rows),
            "intent_accuracy": round(sum(r["intent"] == name for r in rows) / len(rows), 4),
            "answer_hit@3": round(evaluate([(r["answers"], r["relevant"]) for r in scoped], ["hit@3"])["hit@3"], 4) if scoped else None,
        }
    return out


def run_conversations(suggester, rows: list[dict], variants=CONVERSATION_VARIANTS) -> dict:
    """The report of `assist eval run`: metrics per variant, per intent (full pipeline), worst misses."""
    report = {"n_conversations": len(rows), "index_version": suggester.index.version, "variants": {}}
    records_by_variant = {}
    for variant in variants:
        records = replay(suggester, rows, variant)
        records_by_variant[variant] = records
        report["variants"][variant] = score_records(records)
    main = records_by_variant.get("full") or next(iter(records_by_variant.values()))
    report["per_intent"] = per_intent(main)
    report["misses"] = [
        {k: r[k] for k in ("id", "query", "gold_intent", "intent", "relevant", "answers", "abstained")}
        for r in main if r["relevant"] and not set(r["answers"][:3]) & set(r["relevant"])
    ]
    report["records"] = records_by_variant
    return report


# --- external intent sets --------------------------------------------------------------------------


def intents_from_rows(rows: list[dict]):
    """Intent definitions from labelled utterances ({text, intent}); `oos` rows are not an intent."""
    from assist.kb import Intent

    by_name: dict[str, list[str]] = {}
    for r in rows:
        if r["intent"] != "oos" and not r.get("is_oos"):
            by_name.setdefault(r["intent"], []).append(r["text"])
    return [Intent(name=n, label=n, examples=tuple(ex)) for n, ex in sorted(by_name.items())]


def _predict_intents(detector, texts: list[str], batch: int = 128) -> list[tuple[str, float]]:
    out = []
    for i in range(0, len(texts), batch):
        vecs = detector.embedder.encode_queries(texts[i : i + batch])
        for text, vec in zip(texts[i : i + batch], vecs):
            scores = detector.scores(text, vec)
            best = int(np.argmax(scores))
            out.append((detector.intents[best].name, float(scores[best])))
    return out


def tune_oos_threshold(predictions: list[tuple[str, float]], gold: list[str]) -> float:
    """The threshold that maximises accuracy (out-of-scope included) on a validation set."""
    candidates = sorted({round(s, 3) for _, s in predictions})
    best_t, best_acc = 0.0, -1.0
    for t in candidates[:: max(1, len(candidates) // 400)]:
        acc = sum((p if s >= t else "oos") == g for (p, s), g in zip(predictions, gold))
        if acc > best_acc:
            best_t, best_acc = t, acc
    return best_t


def run_intents(detector, test_rows: list[dict], threshold: float) -> dict:
    gold = ["oos" if r.get("is_oos") else r["intent"] for r in test_rows]
    preds = [p if s >= threshold else "oos" for p, s in _predict_intents(detector, [r["text"] for r in test_rows])]
    oos = _prf([(g == "oos", p == "oos") for g, p in zip(gold, preds)])
    scoped = [(g, p) for g, p in zip(gold, preds) if g != "oos"]
    return {
        "accuracy": round(sum(g == p for g, p in zip(gold, preds)) / len(gold), 4),
        "in_scope_accuracy": round(sum(g == p for g, p in scoped) / len(scoped), 4) if scoped else None,
        "macro_f1": round(macro_f1(gold, preds), 4),
        "oos_precision": round(oos["precision"], 4),
        "oos_recall": round(oos["recall"], 4),
        "threshold": threshold,
        "n": len(gold),
    }
