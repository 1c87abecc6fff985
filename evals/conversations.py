"""The eval of the sample KB: labelled conversations replayed through the suggest pipeline (DESIGN §6)."""

import copy
import time
from pathlib import Path

import numpy as np

from assist.config import Settings
from assist.errors import AssistError
from assist.index.embed import describe, embedder_from_settings
from assist.index.store import build_index, open_index
from assist.suggest.classifier import expected_calibration_error, reliability
from assist.suggest.intent import is_latin
from assist.suggest.pipeline import Suggester
from evals.io import CONVERSATION_VARIANTS, eval_index_dir, load_conversations
from evals.metrics import evaluate, macro_f1, precision_recall_f1
from evals.report import Report

VARIANTS = CONVERSATION_VARIANTS
ANSWER_METRICS = ["hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "recall@5"]
TEMPLATE_METRICS = ["hit@1", "hit@3"]
# The columns `assist eval run` prints.
COLUMNS = ("answer_hit@1", "answer_hit@3", "answer_mrr@10", "template_hit@3", "intent_accuracy", "oos_recall", "intent_ece",
           "escalation_precision", "escalation_recall", "abstain_rate_in_scope", "latency_ms_p50")


def _variant_args(variant: str) -> dict:
    """full = the product; the others switch one piece off so each piece's gain is visible."""
    return {
        "full": {"mode": "hybrid"},
        "hybrid": {"mode": "hybrid", "abstain": False},
        "dense": {"mode": "dense", "abstain": False},
        "bm25": {"mode": "bm25", "abstain": False},
        "last_turn": {"mode": "hybrid", "last_turn_only": True},
        "no_questions": {"mode": "hybrid", "settings": {"question_rows": False}},  # without FAQ question rows
        "no_direct": {"mode": "hybrid", "settings": {"direct_answers": False}},  # question rows, no direct answers
        "no_synonyms": {"mode": "hybrid", "hybrid": {"synonyms": False}},  # BM25 without synonyms.yaml
    }[variant]


def replay(suggester: Suggester, rows: list[dict], variant: str, progress=None) -> list[dict]:
    """One record per labelled conversation: what the pipeline returned, next to the gold labels.
    `progress` is called once per conversation (e.g. to advance a progress bar)."""
    args = _variant_args(variant)
    s = suggester
    if args.pop("abstain", True) is False:
        s = suggester.with_settings(abstain_min_dense=-1.0, abstain_min_dense_oos=-1.0)
    if "settings" in args:
        s = s.with_settings(**args.pop("settings"))
    if "hybrid" in args:  # retrieval settings live on the index: a shallow copy with other ones
        index = copy.copy(s.index)
        index.hybrid = index.hybrid.model_copy(update=args.pop("hybrid"))
        s = copy.copy(s)
        s.index = index
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
            "calming_first": bool(out.templates) and out.templates[0].purpose == "escalation",
            "gold_escalate": bool(row.get("escalate")),
            "escalate": out.emotion.escalate,
            "emotion_level": out.emotion.level,
            "clarify": [o.intent for o in out.clarify.options] if out.clarify else [],
            "tags": row.get("tags") or [],
            "latency_ms": latency,
        })
        if progress is not None:
            progress()
    return records


def score_records(records: list[dict]) -> dict:
    """Answer and template metrics over in-scope rows; intent, out-of-scope and escalation over all."""
    in_scope = [r for r in records if r["relevant"]]
    with_templates = [r for r in records if r["gold_templates"]]
    answers = evaluate([(r["answers"], r["relevant"]) for r in in_scope], ANSWER_METRICS)
    templates = evaluate([(r["templates"], r["gold_templates"]) for r in with_templates], TEMPLATE_METRICS)
    gold = [r["gold_intent"] or "" for r in records]
    pred = [r["intent"] for r in records]
    oos = precision_recall_f1([(g == "out_of_scope", p == "out_of_scope") for g, p in zip(gold, pred)])
    esc = precision_recall_f1([(r["gold_escalate"], r["escalate"]) for r in records])
    lat = [r["latency_ms"] for r in records]
    out = {f"answer_{k}": v for k, v in answers.items()}
    out.update({f"template_{k}": v for k, v in templates.items()})
    out.update({
        "intent_accuracy": sum(g == p for g, p in zip(gold, pred)) / len(records) if records else 0.0,
        "intent_macro_f1": macro_f1(gold, pred),
        "intent_ece": expected_calibration_error([r["intent_confidence"] for r in records], [g == p for g, p in zip(gold, pred)]),
        "oos_precision": oos["precision"], "oos_recall": oos["recall"],
        "escalation_precision": esc["precision"], "escalation_recall": esc["recall"],
        # upset customers (gold) whose first template is the apology / hand-off reply
        "deescalation_first": (sum(r.get("calming_first", False) for r in records if r["gold_escalate"])
                               / max(1, sum(r["gold_escalate"] for r in records))),
        "abstain_rate_in_scope": sum(r["abstained"] for r in in_scope) / len(in_scope) if in_scope else 0.0,
        # how often the agent is offered a clarifying question, and how often its options hold the right intent
        "clarify_rate": sum(bool(r.get("clarify")) for r in records) / len(records) if records else 0.0,
        "clarify_covers_gold": (sum(r["gold_intent"] in r["clarify"] for r in records if r.get("clarify"))
                                / max(1, sum(bool(r.get("clarify")) for r in records))),
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


SLICE_METRICS = ("answer_hit@1", "answer_hit@3", "answer_mrr@10", "template_hit@3", "intent_accuracy", "abstain_rate_in_scope")


def is_english(record: dict) -> bool:
    """An English request: tagged so, or, in an untagged set, a mostly-Latin query."""
    return "english" in record["tags"] or (not record["tags"] and is_latin(record["query"]))


def slices(records: list[dict], english_articles: set[str]) -> dict[str, dict]:
    """The metrics of language slices: `chinese` and `english` requests, and `cross_lingual` (English
    requests whose gold answers exist only in Chinese articles), each with its size `n`."""
    english = [r for r in records if is_english(r)]
    groups = {
        "chinese": [r for r in records if not is_english(r)],
        "english": english,
        "cross_lingual": [r for r in english if r["relevant"] and not set(r["relevant"]) & english_articles],
    }
    out = {}
    for name, group in groups.items():
        scores = score_records(group) if group else {}
        out[name] = {"n": len(group), **{k: scores.get(k, 0.0) for k in SLICE_METRICS}}
    return out


def run_conversations(suggester: Suggester, rows: list[dict], variants=VARIANTS, progress: bool = False) -> Report:
    """Metrics per variant, per intent (full pipeline) and the worst misses, with every record kept."""
    from rich.progress import Progress

    data = {"n_conversations": len(rows), "index_version": suggester.index.version, "variants": {}}
    english_articles = {a.id for a in suggester.index.kb.articles if is_latin(f"{a.title} {a.body}")}
    records_by_variant = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("replaying conversations", total=len(rows) * len(variants))
        for variant in variants:
            records = replay(suggester, rows, variant, progress=lambda: bar.advance(task))
            records_by_variant[variant] = records
            data["variants"][variant] = {**score_records(records), "slices": slices(records, english_articles)}
    main = records_by_variant.get("full") or next(iter(records_by_variant.values()))
    data["per_intent"] = per_intent(main)
    data["reliability"] = reliability([r["intent_confidence"] for r in main], [r["intent"] == r["gold_intent"] for r in main])
    data["misses"] = [
        {k: r[k] for k in ("id", "query", "gold_intent", "intent", "relevant", "answers", "abstained")}
        for r in main if r["relevant"] and not set(r["answers"][:3]) & set(r["relevant"])
    ]
    titles = {a.id: a.title for a in suggester.index.kb.articles}
    return Report(data, records_by_variant, titles=titles, columns=COLUMNS)


def eval_kb(settings: Settings, dataset: Path, kb_dir: Path | None = None, variants=VARIANTS,
            progress: bool = False) -> Report:
    """`assist eval run`: index the KB into its eval index, replay the labelled conversations."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise AssistError(f"variants must be among {', '.join(VARIANTS)}")
    rows = load_conversations(dataset)
    embedder = embedder_from_settings(settings, build=True)
    index_dir = eval_index_dir(settings)
    build_index(kb_dir or settings.kb_dir, index_dir, embedder, chunking=settings.chunking, dense=settings.dense,
                intent=settings.intent, keep_versions=1, progress=progress)
    suggester = Suggester(open_index(settings, index_dir, embedder), settings.suggest)
    report = run_conversations(suggester, rows, variants, progress=progress)
    report.data["model"] = describe(embedder)
    return report
