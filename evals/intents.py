"""Intent detection evals on external labelled utterances (CLINC150, BANKING77, SMP2017 ...).

The model is the product's (`assist.suggest.classifier`), trained on the set's training split with
its own out-of-scope rows, calibrated and thresholded by cross-validation on that split alone.
"""

import time
from pathlib import Path

import numpy as np

from assist.config import Settings
from assist.index.embed import describe, embedder_from_settings
from assist.index.store import query_vectors
from assist.kb import OUT_OF_SCOPE
from assist.suggest.classifier import expected_calibration_error, reliability, train_intent_model
from evals.io import eval_indexes_root, read_jsonl
from evals.metrics import macro_f1, precision_recall_f1
from evals.report import Report

OOS = "oos"  # the out-of-scope label of the external sets


def gold_label(row: dict) -> str:
    """The row's intent, or `out_of_scope` for the sets' out-of-scope rows."""
    return OUT_OF_SCOPE if row.get("is_oos") or row["intent"] in (OOS, OUT_OF_SCOPE) else row["intent"]


def score_intents(gold: list[str], pred: list[str], confidence: list[float]) -> dict:
    """Accuracy (out-of-scope counts as a class), in-scope accuracy, macro-F1, out-of-scope P/R, ECE."""
    oos = precision_recall_f1([(g == OUT_OF_SCOPE, p == OUT_OF_SCOPE) for g, p in zip(gold, pred)])
    scoped = [(g, p) for g, p in zip(gold, pred) if g != OUT_OF_SCOPE]
    right = [g == p for g, p in zip(gold, pred)]
    return {
        "accuracy": round(sum(right) / len(gold), 4) if gold else 0.0,
        "in_scope_accuracy": round(sum(g == p for g, p in scoped) / len(scoped), 4) if scoped else None,
        "macro_f1": round(macro_f1(gold, pred), 4),
        "oos_precision": round(oos["precision"], 4),
        "oos_recall": round(oos["recall"], 4),
        "ece": round(expected_calibration_error(confidence, right), 4),
        "n": len(gold),
    }


def eval_intents(settings: Settings, train: Path, test: Path) -> Report:
    """`assist eval intents`: the intent model trained on `train` (cross-validated calibration and
    out-of-scope threshold from `train` alone), scored on `test`. Query vectors are cached."""
    embedder = embedder_from_settings(settings)
    cache_dir = eval_indexes_root(settings)
    train_rows, test_rows = read_jsonl(train), read_jsonl(test)
    train_texts = [r["text"] for r in train_rows]
    model = train_intent_model(train_texts, [gold_label(r) for r in train_rows],
                               query_vectors(train_texts, cache_dir, embedder), settings.intent.options())
    texts = [r["text"] for r in test_rows]
    vectors = query_vectors(texts, cache_dir, embedder)
    preds = model.predict_many(texts, vectors)
    gold = [gold_label(r) for r in test_rows]
    data = score_intents(gold, [p.name for p in preds], [p.confidence for p in preds])
    data.update({
        "gate_threshold": round(model.gate_threshold, 4) if model.gate_w is not None else None,
        "train": model.info, "intent_ms_p50": round(intent_latency_ms(model, texts[:300], vectors[:300]), 4), "model": describe(embedder),
        "reliability": reliability([p.confidence for p in preds], [p.name == g for p, g in zip(preds, gold)]),
    })
    records = [{"text": t, "gold": g, "intent": p.name, "confidence": round(p.confidence, 4), "in_scope": round(p.in_scope, 4)}
               for t, g, p in zip(texts, gold, preds)]
    return Report(data, {"test": records})


def intent_latency_ms(model, texts: list[str], vectors: np.ndarray, repeat: int = 3) -> float:
    """Median per-query time of the intent stage (one query at a time, as the pipeline calls it)."""
    times = []
    for _ in range(repeat):
        for t, v in zip(texts, vectors):
            start = time.perf_counter()
            model.predict(t, v)
            times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)) if times else 0.0
