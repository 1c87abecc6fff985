"""Intent detection evals on external labelled utterances (CLINC150, BANKING77, SMP2017 ...)."""

from pathlib import Path

from assist.config import Settings
from assist.index.embed import describe, embedder_from_settings
from assist.kb import Intent
from assist.suggest.intent import IntentDetector
from evals.io import read_jsonl
from evals.metrics import macro_f1, precision_recall_f1
from evals.report import Report

OOS = "oos"  # the out-of-scope label of the external sets


def gold_label(row: dict) -> str:
    return OOS if row.get("is_oos") or row["intent"] == OOS else row["intent"]


def intents_from_rows(rows: list[dict]) -> list[Intent]:
    """Intent definitions from labelled utterances ({text, intent}); `oos` rows are not an intent."""
    by_name: dict[str, list[str]] = {}
    for r in rows:
        if gold_label(r) != OOS:
            by_name.setdefault(r["intent"], []).append(r["text"])
    return [Intent(name=n, label=n, examples=tuple(ex)) for n, ex in sorted(by_name.items())]


def tune_oos_threshold(predictions: list[tuple[str, float]], gold: list[str]) -> float:
    """The threshold that maximises accuracy (out-of-scope included) on a validation set."""
    candidates = sorted({round(s, 3) for _, s in predictions})
    best_t, best_acc = 0.0, -1.0
    for t in candidates[:: max(1, len(candidates) // 400)]:
        acc = sum((p if s >= t else OOS) == g for (p, s), g in zip(predictions, gold))
        if acc > best_acc:
            best_t, best_acc = t, acc
    return best_t


def run_intents(detector: IntentDetector, test_rows: list[dict], threshold: float) -> Report:
    gold = [gold_label(r) for r in test_rows]
    preds = [p if s >= threshold else OOS for p, s in detector.best([r["text"] for r in test_rows])]
    oos = precision_recall_f1([(g == OOS, p == OOS) for g, p in zip(gold, preds)])
    scoped = [(g, p) for g, p in zip(gold, preds) if g != OOS]
    return Report({
        "accuracy": round(sum(g == p for g, p in zip(gold, preds)) / len(gold), 4) if gold else 0.0,
        "in_scope_accuracy": round(sum(g == p for g, p in scoped) / len(scoped), 4) if scoped else None,
        "macro_f1": round(macro_f1(gold, preds), 4),
        "oos_precision": round(oos["precision"], 4),
        "oos_recall": round(oos["recall"], 4),
        "threshold": threshold,
        "n": len(gold),
    })


def eval_intents(settings: Settings, train: Path, test: Path, val: Path | None = None) -> Report:
    """`assist eval intents`: examples from `train`, scored on `test`; `val` tunes the out-of-scope threshold."""
    embedder = embedder_from_settings(settings)
    train_rows = read_jsonl(train)
    detector = IntentDetector(intents_from_rows(train_rows), embedder, keyword_bonus=0.0)
    threshold = settings.suggest.intent_oos_threshold
    if val:
        rows = read_jsonl(val)
        threshold = tune_oos_threshold(detector.best([r["text"] for r in rows]), [gold_label(r) for r in rows])
    elif not any(gold_label(r) == OOS for r in train_rows):
        threshold = -1.0  # a closed set (e.g. banking77): never answer out_of_scope
    report = run_intents(detector, read_jsonl(test), threshold)
    report.data["model"] = describe(embedder)
    return report
