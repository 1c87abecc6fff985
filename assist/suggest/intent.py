"""Intent detection: nearest intent examples (dense) plus keyword evidence, calibrated, with out-of-scope."""

import copy
import re
from dataclasses import dataclass

import numpy as np

from assist.kb import OUT_OF_SCOPE, Intent

OUT_OF_SCOPE_LABEL = "无关问题"
_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u3400-\u9fff]")


def is_latin(text: str) -> bool:
    """Mostly Latin letters: multilingual encoders score such queries lower against Chinese text."""
    latin, cjk = len(_LATIN.findall(text)), len(_CJK.findall(text))
    return latin > 0 and latin >= 4 * cjk


@dataclass(frozen=True)
class IntentScore:
    name: str
    label: str
    confidence: float


@dataclass(frozen=True)
class IntentResult:
    name: str
    label: str
    confidence: float
    alternatives: tuple[IntentScore, ...]
    escalate: bool = False
    similarity: float = 0.0  # raw best similarity, for evals and threshold tuning


class IntentDetector:
    """Scores each intent by its nearest examples to the query; below `oos_threshold` -> out_of_scope.

    Score of an intent = mean of its top-2 example cosines (one lucky example cannot win alone)
    + `keyword_bonus` when one of its keywords occurs in the text. When the caller passes KB
    evidence (per intent, the best similarity of a retrieved chunk written for it), the score is
    the mean of both, which the labelled conversations favour over examples alone (README, "Why the
    defaults"). Confidence = softmax of
    the scores at `temperature`, damped when the best score is near the out-of-scope threshold.
    """

    def __init__(self, intents: list[Intent], embedder, *, oos_threshold: float = 0.88, temperature: float = 0.02,
                 keyword_bonus: float = 0.02, latin_offset: float = 0.0, batch_size: int = 256):
        self.intents = [i for i in intents if i.examples]
        self.embedder = embedder
        self.oos_threshold = oos_threshold
        self.temperature = temperature
        self.keyword_bonus = keyword_bonus
        self.latin_offset = latin_offset
        texts = [e for intent in self.intents for e in intent.examples]
        # grid[i] = example rows of intent i, padded with the index of a -inf cell
        width = max((len(i.examples) for i in self.intents), default=1)
        self._grid = np.full((len(self.intents), width), len(texts), dtype=np.int64)
        start = 0
        for n, intent in enumerate(self.intents):
            self._grid[n, : len(intent.examples)] = np.arange(start, start + len(intent.examples))
            start += len(intent.examples)
        chunks = [embedder.encode_queries(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        self._examples = np.vstack(chunks) if chunks else np.zeros((0, embedder.dim), np.float32)
        self._keywords = [tuple(k.lower() for k in i.keywords) for i in self.intents]
        self._index = {i.name: n for n, i in enumerate(self.intents)}

    def with_options(self, **options) -> "IntentDetector":
        """A copy with other decision settings (oos_threshold, temperature, keyword_bonus,
        latin_offset), sharing the encoded examples: nothing is encoded again."""
        unknown = set(options) - {"oos_threshold", "temperature", "keyword_bonus", "latin_offset"}
        if unknown:
            raise TypeError(f"unknown intent detector option(s): {', '.join(sorted(unknown))}")
        other = copy.copy(self)
        for name, value in options.items():
            setattr(other, name, value)
        return other

    def scores(self, text: str, query_vector: np.ndarray | None = None) -> np.ndarray:
        """One score per intent (same order as self.intents)."""
        if not self.intents:
            return np.zeros(0, np.float32)
        q = self.embedder.encode_queries([text])[0] if query_vector is None else query_vector
        sims = np.append(self._examples @ q, -np.inf)  # the extra cell pads short intents
        grid = sims[self._grid]
        top2 = -np.partition(-grid, 1, axis=1)[:, :2] if grid.shape[1] > 1 else np.repeat(grid, 2, axis=1)
        second = np.where(np.isfinite(top2[:, 1]), top2[:, 1], top2[:, 0])
        out = ((top2[:, 0] + second) / 2).astype(np.float32)
        lowered = text.lower()
        for n, kws in enumerate(self._keywords):
            if any(k and k in lowered for k in kws):
                out[n] += self.keyword_bonus
        return out

    def best(self, texts: list[str], batch: int = 128) -> list[tuple[str, float]]:
        """The best intent and its score for each text (no out-of-scope decision), encoded in batches."""
        out = []
        for i in range(0, len(texts), batch):
            part = texts[i : i + batch]
            for text, vec in zip(part, self.embedder.encode_queries(part)):
                scores = self.scores(text, vec)
                top = int(np.argmax(scores))
                out.append((self.intents[top].name, float(scores[top])))
        return out

    def evidence(self, hits) -> np.ndarray:
        """Per intent, the best dense score among retrieved chunks written for it (the lowest score otherwise)."""
        scored = [h for h in hits if h.dense_score is not None]
        out = np.full(len(self.intents), min((h.dense_score for h in scored), default=0.0), dtype=np.float32)
        for h in scored:
            for name in h.chunk.intents:
                n = self._index.get(name)
                if n is not None and h.dense_score > out[n]:
                    out[n] = h.dense_score
        return out

    def detect(self, text: str, query_vector: np.ndarray | None = None, top: int = 3, evidence: np.ndarray | None = None) -> IntentResult:
        if not text.strip() or not self.intents:
            return IntentResult(OUT_OF_SCOPE, OUT_OF_SCOPE_LABEL, 1.0, ())
        s = self.scores(text, query_vector)
        if evidence is not None:
            s = (s + evidence) / 2
        threshold = self.oos_threshold - (self.latin_offset if is_latin(text) else 0.0)
        z = np.exp((s - s.max()) / self.temperature)
        p = z / z.sum()
        order = np.argsort(-s, kind="stable")[: top + 1]
        best = int(order[0])
        # Near the threshold the model is unsure whether the request is in scope at all.
        gate = 1.0 / (1.0 + np.exp(np.clip(-(float(s[best]) - threshold) / 0.01, -50.0, 50.0)))
        alternatives = tuple(
            IntentScore(self.intents[i].name, self.intents[i].label, round(float(p[i] * gate), 4)) for i in order
        )
        if s[best] < threshold:
            return IntentResult(OUT_OF_SCOPE, OUT_OF_SCOPE_LABEL, round(float(1 - gate), 4), alternatives[:top], False, float(s[best]))
        chosen = self.intents[best]
        return IntentResult(chosen.name, chosen.label, alternatives[0].confidence, alternatives[1 : top + 1], chosen.escalate, float(s[best]))
