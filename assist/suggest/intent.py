"""Intent detection with the trained, calibrated intent model of the index version (`classifier.py`).

This module turns the KB into training rows (`training_rows`), trains the model for a KB
(`train_for_kb`, called by the index build) and wraps it for the pipeline (`IntentDetector`).
"""

import functools
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from assist.kb import KB, OUT_OF_SCOPE, Intent
from assist.suggest.classifier import IntentModel, TrainOptions, evidence_classes, train_intent_model

OUT_OF_SCOPE_LABEL = "无关问题"
_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u3400-\u9fff]")


def is_latin(text: str) -> bool:
    """Mostly Latin letters: multilingual encoders score such queries lower against Chinese text."""
    latin, cjk = len(_LATIN.findall(text)), len(_CJK.findall(text))
    return latin > 0 and latin >= 4 * cjk


@functools.cache
def builtin_out_of_scope() -> tuple[str, ...]:
    """The package's generic out-of-scope utterances (zh + en): chit-chat, weather, finance, other platforms..."""
    data = yaml.safe_load(resources.files("assist").joinpath("data/out_of_scope.yaml").read_text(encoding="utf-8"))
    return tuple(dict.fromkeys(str(t).strip() for group in data.values() for t in group if str(t).strip()))


def training_rows(kb: KB, chunks=()) -> tuple[list[str], list[str], list[bool]]:
    """(texts, labels, calibrate) the intent model learns from: every intent's examples, keywords and
    label; the title and heading paths of articles written for exactly one intent; out-of-scope
    examples of the KB and, unless it opts out, the built-in set. Duplicate texts keep their first
    label. `calibrate` is False for rows taken from article text (their retrieval evidence is the
    article itself, so they train the model but do not calibrate it)."""
    rows: dict[str, tuple[str, bool]] = {}

    def add(text: str, label: str, calibrate: bool = True) -> None:
        text = text.strip()
        if text and text not in rows:
            rows[text] = (label, calibrate)

    for intent in kb.intents:
        for text in (*intent.examples, *intent.keywords, intent.label):
            add(text, intent.name)
    known = {i.name for i in kb.intents}
    for article in kb.published:
        if len(article.intents) == 1 and article.intents[0] in known:
            add(article.title, article.intents[0], False)
    for chunk in chunks:
        if chunk.kind == "article" and len(chunk.intents) == 1 and chunk.intents[0] in known and len(chunk.heading_path) > 1:
            add(" ".join(chunk.heading_path), chunk.intents[0], False)
    for text in (*kb.out_of_scope_examples, *(builtin_out_of_scope() if kb.builtin_out_of_scope else ())):
        add(text, OUT_OF_SCOPE)
    return list(rows), [label for label, _ in rows.values()], [c for _, c in rows.values()]


EVIDENCE_DEPTH = 20  # chunks whose intents count as evidence: the pipeline's article candidates


def evidence_matrix(classes: tuple[str, ...], scores: np.ndarray, chunk_intents: list[tuple[str, ...]]) -> np.ndarray:
    """Per row and class, the best of the row's top chunk scores among chunks written for that intent
    (the lowest of those top scores otherwise). `scores` is rows x chunks."""
    scores = np.atleast_2d(scores)
    depth = min(EVIDENCE_DEPTH, scores.shape[1])
    if depth == 0:
        return np.zeros((scores.shape[0], len(classes)))
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    column = {c: n for n, c in enumerate(classes)}
    out = np.repeat(np.take_along_axis(scores, top, axis=1).min(axis=1, keepdims=True), len(classes), axis=1)
    for r in range(scores.shape[0]):
        for j in top[r]:
            for name in chunk_intents[j]:
                k = column.get(name)
                if k is not None and scores[r, j] > out[r, k]:
                    out[r, k] = scores[r, j]
    return out


def train_for_kb(kb: KB, chunks, encode, opts: TrainOptions = TrainOptions(),
                 chunk_vectors: np.ndarray | None = None) -> IntentModel | None:
    """The KB's intent model (None when the KB declares no intents). `encode(texts)` gives query
    vectors; with `chunk_vectors` (one per chunk) the model also learns how much KB evidence helps."""
    if not kb.intents:
        return None
    texts, labels, calibrate = training_rows(kb, chunks)
    vectors = encode(texts)
    evidence = None
    if chunk_vectors is not None:
        rows = [n for n, c in enumerate(chunks) if c.kind == "article"]
        if rows:
            scores = vectors @ np.asarray(chunk_vectors, np.float32)[rows].T
            evidence = evidence_matrix(evidence_classes(labels), scores, [chunks[n].intents for n in rows])
    return train_intent_model(texts, labels, vectors, opts, evidence, np.array(calibrate))


@dataclass(frozen=True)
class IntentScore:
    name: str
    label: str
    confidence: float


@dataclass(frozen=True)
class IntentResult:
    name: str
    label: str
    confidence: float  # calibrated: the probability that this decision is right
    alternatives: tuple[IntentScore, ...]
    escalate: bool = False
    similarity: float = 0.0  # mean cosine of the nearest intent examples, for evals
    in_scope: float = 1.0  # probability that the request is one this KB handles at all
    probability: float = 1.0  # the model's class probability of this intent (alternatives carry theirs)


class IntentDetector:
    """The index version's intent model over the query vector the pipeline already computed."""

    def __init__(self, intents: list[Intent], model: IntentModel | None):
        self.intents = list(intents)
        self.model = model
        self._by_name = {i.name: i for i in self.intents}

    def label(self, name: str) -> str:
        return OUT_OF_SCOPE_LABEL if name == OUT_OF_SCOPE else self._by_name[name].label if name in self._by_name else name

    def detect(self, text: str, query_vector: np.ndarray | None, hits=(), top: int = 3) -> IntentResult:
        """The intent of `text`; `hits` (retrieved article chunks with dense scores) are KB evidence."""
        if not text.strip() or self.model is None or query_vector is None:
            return IntentResult(OUT_OF_SCOPE, OUT_OF_SCOPE_LABEL, 1.0, ())
        return self.result(self.model.predict(text, query_vector, self.evidence(hits)), top)

    def result(self, pred, top: int = 3) -> IntentResult:
        classes = self.model.classes
        best = np.argpartition(-pred.probabilities, min(top + 1, len(classes) - 1))[: top + 2]
        order = [int(i) for i in best[np.argsort(-pred.probabilities[best], kind="stable")] if classes[i] != OUT_OF_SCOPE]
        ranked = [IntentScore(classes[i], self.label(classes[i]), round(float(pred.probabilities[i]), 4)) for i in order]
        if pred.name == OUT_OF_SCOPE:
            return IntentResult(OUT_OF_SCOPE, OUT_OF_SCOPE_LABEL, round(pred.confidence, 4), tuple(ranked[:top]),
                                False, pred.similarity, round(pred.in_scope, 4))
        chosen = self._by_name.get(pred.name)
        others = tuple(r for r in ranked if r.name != pred.name)[:top]
        probability = float(pred.probabilities[classes.index(pred.name)])
        return IntentResult(pred.name, self.label(pred.name), round(pred.confidence, 4), others,
                            bool(chosen and chosen.escalate), pred.similarity, round(pred.in_scope, 4), round(probability, 4))

    def evidence(self, hits) -> np.ndarray | None:
        """Per model class, the best dense score among retrieved chunks written for it (as at training)."""
        scored = [h for h in hits if h.dense_score is not None][:EVIDENCE_DEPTH]
        if not scored or not self.model.evidence_weight:
            return None
        scores = np.array([[h.dense_score for h in scored]])
        return evidence_matrix(self.model.classes, scores, [h.chunk.intents for h in scored])[0]
