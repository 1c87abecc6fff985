"""The trained intent model: a calibrated linear classifier over the query vector and hashed n-grams.

Trained at index build time from what the KB knows about each intent (examples, keywords, titles and
headings of the articles written for it) and from out-of-scope examples, and stored in the index
version, so a rollback restores the model that went with the KB. At request time it costs one matrix
product over the query vector the pipeline has already computed, plus a few rows of n-gram weights.

Decision, in three fitted steps (each fitted on out-of-fold predictions, never on the rows it scores):
1. a multinomial logistic regression over [standardised query vector ; hashed word / character n-grams],
   with `out_of_scope` as a class of its own when the KB has out-of-scope examples, its logits scaled by a
   temperature (minimum negative log-likelihood);
2. an in-scope gate: a logistic model over (log best in-scope probability, log out-of-scope probability,
   nearest-example similarity), with a threshold that maximises a stated cost — by default balanced
   accuracy, the mean of in-scope accuracy and out-of-scope recall;
3. the shown confidence: Platt scaling of the decision's raw probability onto how often such decisions
   were right, so "0.8" means right about 8 times in 10.
"""

import json
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assist.kb import OUT_OF_SCOPE

MODEL_FILE = "intent-model.npz"
_TOKENS = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")
_SPACE = re.compile(r"\s+")
_EPS = 1e-6


def ngrams(text: str) -> list[str]:
    """Word unigrams and bigrams (a CJK character counts as a word) and character 2- and 3-grams."""
    lowered = text.lower()
    words = _TOKENS.findall(lowered)
    out = ["u:" + w for w in words]
    out += ["b:" + a + b for a, b in zip(words, words[1:])]
    s = _SPACE.sub(" ", lowered).strip()
    out += ["c2:" + s[i:i + 2] for i in range(len(s) - 1) if " " not in s[i:i + 2]]
    out += ["c3:" + s[i:i + 3] for i in range(len(s) - 2) if " " not in s[i:i + 3]]
    return out


def hashed(text: str, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket ids, weights): square-root term counts, L2-normalised."""
    grams = ngrams(text)
    if not grams:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids, counts = np.unique(np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), np.int64, len(grams)) % buckets,
                            return_counts=True)
    w = np.sqrt(counts.astype(np.float32))
    return ids, w / np.linalg.norm(w)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))


def _logit(p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Prediction:
    """One decision: the chosen intent (or out_of_scope), its calibrated confidence, and every class's
    calibrated probability (in `IntentModel.classes` order)."""

    name: str
    confidence: float
    probabilities: np.ndarray
    in_scope: float  # the gate's probability that the request is in scope at all
    similarity: float  # mean cosine of the 3 nearest in-scope examples


@dataclass
class IntentModel:
    classes: tuple[str, ...]
    mean: np.ndarray  # (dim,) query-vector standardisation
    scale: np.ndarray  # (dim,)
    dense_w: np.ndarray  # (dim, C)
    lexical_w: np.ndarray  # (buckets, C)
    bias: np.ndarray  # (C,)
    examples: np.ndarray  # (n, dim) in-scope training vectors, for the nearest-example similarity
    temperature: float = 1.0
    gate_w: np.ndarray | None = None  # (3,) + gate_b; None = no out-of-scope decision (closed set)
    gate_b: float = 0.0
    gate_threshold: float = 0.5
    platt: tuple[float, float] = (1.0, 0.0)
    lexical_weight: float = 0.5
    evidence_weight: float = 0.0  # weight of KB evidence (per intent, the best retrieved chunk's cosine)
    info: dict = field(default_factory=dict)

    @property
    def buckets(self) -> int:
        return self.lexical_w.shape[0]

    def logits(self, text: str, vector: np.ndarray, evidence: np.ndarray | None = None) -> np.ndarray:
        z = ((vector - self.mean) * self.scale) @ self.dense_w + self.bias
        ids, w = hashed(text, self.buckets)
        if len(ids):
            z = z + self.lexical_weight * (w @ self.lexical_w[ids])
        if evidence is not None and self.evidence_weight:
            z = z + self.evidence_weight * _evidence_term(evidence, self.classes)
        return z / self.temperature

    def predict(self, text: str, vector: np.ndarray, evidence: np.ndarray | None = None) -> Prediction:
        return self.predict_many([text], vector[None, :], None if evidence is None else evidence[None, :])[0]

    def _decide(self, p: np.ndarray, sims: np.ndarray) -> list[Prediction]:
        oos = self.classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in self.classes else None
        inscope = p.copy()
        if oos is not None:
            inscope[:, oos] = 0.0
        best = inscope.argmax(axis=1)
        pbest = inscope[np.arange(len(p)), best]
        if self.gate_w is not None and oos is not None:
            gate = _sigmoid(_gate_features(pbest, p[:, oos], sims) @ self.gate_w + self.gate_b)
        else:
            gate = np.ones(len(p))
        accept = gate >= self.gate_threshold
        if oos is not None:  # the model's own first choice is out of scope
            accept &= p[:, oos] < pbest
        raw = np.where(accept, pbest * gate, 1.0 - gate)
        conf = _sigmoid(self.platt[0] * _logit(raw) + self.platt[1])
        out = []
        for n in range(len(p)):
            name = self.classes[best[n]] if accept[n] else OUT_OF_SCOPE
            out.append(Prediction(name, float(conf[n]), p[n], float(gate[n]), float(sims[n])))
        return out

    def predict_many(self, texts: list[str], vectors: np.ndarray, evidence: np.ndarray | None = None) -> list[Prediction]:
        rows = [self.logits(t, v, None if evidence is None else evidence[n]) for n, (t, v) in enumerate(zip(texts, vectors))]
        z = np.stack(rows) if rows else np.zeros((0, len(self.classes)))
        sims = _nearest(self.examples, vectors) if len(self.examples) else np.zeros(len(texts))
        return self._decide(_softmax(z), sims)

    # --- storage ---------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        meta = {"classes": list(self.classes), "temperature": self.temperature, "gate_b": self.gate_b,
                "gate_threshold": self.gate_threshold, "platt": list(self.platt),
                "lexical_weight": self.lexical_weight, "evidence_weight": self.evidence_weight, "info": self.info}
        arrays = {"mean": self.mean, "scale": self.scale, "dense_w": self.dense_w, "lexical_w": self.lexical_w,
                  "bias": self.bias, "examples": self.examples.astype(np.float16)}
        if self.gate_w is not None:
            arrays["gate_w"] = self.gate_w
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta, ensure_ascii=False)), **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "IntentModel":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(
                classes=tuple(meta["classes"]), mean=f["mean"], scale=f["scale"], dense_w=f["dense_w"],
                lexical_w=f["lexical_w"], bias=f["bias"], examples=f["examples"].astype(np.float32),
                temperature=meta["temperature"], gate_w=f["gate_w"] if "gate_w" in f.files else None,
                gate_b=meta["gate_b"], gate_threshold=meta["gate_threshold"], platt=tuple(meta["platt"]),
                lexical_weight=meta["lexical_weight"], evidence_weight=meta.get("evidence_weight", 0.0),
                info=meta.get("info", {}),
            )


def _nearest(examples: np.ndarray, vectors: np.ndarray, k: int = 3) -> np.ndarray:
    sims = vectors @ examples.T
    k = min(k, sims.shape[1])
    return -np.partition(-sims, k - 1, axis=1)[:, :k].mean(axis=1)


def _evidence_term(evidence: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Evidence relative to the best intent's (0 for it, negative for the others; 0 for out_of_scope)."""
    e = np.asarray(evidence, np.float64)
    inscope = np.array([c != OUT_OF_SCOPE for c in classes])
    out = np.where(inscope, e - e[..., inscope].max(axis=-1, keepdims=True), 0.0)
    return out


def _gate_features(pbest: np.ndarray, poos: np.ndarray, sims: np.ndarray) -> np.ndarray:
    return np.stack([np.log(pbest + _EPS), np.log(poos + _EPS), sims * 10.0], axis=1)


# --- training ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainOptions:
    regularization: float = 30.0  # C of the logistic regression (higher = weaker L2 penalty)
    lexical_weight: float = 0.5  # weight of the hashed n-grams next to the query vector
    buckets: int = 2 ** 12  # 2^14 fits no better on CLINC150 / BANKING77 / SMP2017 and trains 1.5-3x slower
    folds: int = 5
    oos_weight: float = 0.5  # cost weight of missing an out-of-scope request (0.5 = balanced accuracy)
    seed: int = 0
    max_iter: int = 300


def _features(texts: list[str], vectors: np.ndarray, mean, scale, opts: TrainOptions):
    from scipy import sparse

    rows, cols, vals = [], [], []
    for r, text in enumerate(texts):
        ids, w = hashed(text, opts.buckets)
        rows.extend([r] * len(ids))
        cols.extend(ids.tolist())
        vals.extend((w * opts.lexical_weight).tolist())
    lexical = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), opts.buckets), dtype=np.float32)
    return sparse.hstack([sparse.csr_matrix(((vectors - mean) * scale).astype(np.float32)), lexical]).tocsr()


def _fit_lr(X, y: np.ndarray, n_classes: int, opts: TrainOptions):
    """(W (features, C), b (C,)) of a multinomial logistic regression; classes absent from y get -inf-ish bias."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    W = np.zeros((X.shape[1], n_classes), np.float32)
    b = np.full(n_classes, -30.0, np.float32)
    if len(present) == 1:
        b[present[0]] = 0.0
        return W, b
    # balanced: every class weighs the same in total, so a large out-of-scope set does not become a prior
    clf = LogisticRegression(C=opts.regularization, max_iter=opts.max_iter, class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    coef = clf.coef_ if len(present) > 2 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
    inter = clf.intercept_ if len(present) > 2 else np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    W[:, present] = coef.T
    b[present] = inter
    return W, b


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per row, stratified by class; single-example classes stay in every training part (-1)."""
    rng = np.random.default_rng(seed)
    fold = np.full(len(y), -1)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) < 2:
            continue
        rng.shuffle(rows)
        fold[rows] = (np.arange(len(rows)) + rng.integers(k)) % k
    return fold


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 121)):
        p = _softmax(logits / t)[np.arange(len(y)), y]
        nll = -np.log(p + 1e-12).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def _fit_logistic(X: np.ndarray, target: np.ndarray, balanced: bool) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(target)) < 2:
        return np.zeros(X.shape[1]), 10.0 if target.all() else -10.0
    clf = LogisticRegression(C=10.0, class_weight="balanced" if balanced else None, max_iter=1000).fit(X, target)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def evidence_classes(labels) -> tuple[str, ...]:
    """The class order of a model trained on `labels` (intents sorted, then out_of_scope)."""
    labels = set(labels)
    return tuple(sorted(labels - {OUT_OF_SCOPE}) + ([OUT_OF_SCOPE] if OUT_OF_SCOPE in labels else []))


EVIDENCE_WEIGHTS = (0.0, 5.0, 10.0, 20.0, 40.0)


def train_intent_model(texts: list[str], labels: list[str], vectors: np.ndarray,
                       opts: TrainOptions = TrainOptions(), evidence: np.ndarray | None = None,
                       calibrate: np.ndarray | None = None) -> IntentModel:
    """Train, calibrate and set the out-of-scope threshold (see the module docstring).

    `labels` are intent names or `out_of_scope`; `vectors` are the query vectors of `texts` (the
    encoder the product queries with). Works with one intent, and without out-of-scope rows (then
    the model never answers out_of_scope: a closed set). `evidence` (rows x classes, in
    `evidence_classes(labels)` order) is KB retrieval evidence per row; its weight is chosen on
    out-of-fold accuracy. `calibrate` marks the rows the out-of-fold fits may use (rows copied from
    the KB's own text would flatter the evidence); all rows by default.
    """
    start = time.perf_counter()
    vectors = np.asarray(vectors, np.float32)
    classes = evidence_classes(labels)
    index = {c: n for n, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    oos = index.get(OUT_OF_SCOPE)
    inscope_rows = y != oos if oos is not None else np.ones(len(y), bool)
    mean = vectors.mean(axis=0)
    scale = (1.0 / ((vectors.std(axis=0) + 1e-6) * np.sqrt(vectors.shape[1]))).astype(np.float32)
    X = _features(texts, vectors, mean, scale, opts)

    # Out-of-fold logits and nearest-example similarities: what the model does on rows it has not seen.
    fold = _folds(y, opts.folds, opts.seed)
    oof = np.zeros((len(y), len(classes)))
    sims = np.zeros(len(y))
    for k in range(opts.folds):
        held = fold == k
        if not held.any():
            continue
        W, b = _fit_lr(X[~held], y[~held], len(classes), opts)
        oof[held] = X[held] @ W + b
        ref = vectors[~held & inscope_rows]
        sims[held] = _nearest(ref, vectors[held]) if len(ref) else 0.0
    seen = (fold >= 0) & (np.ones(len(y), bool) if calibrate is None else np.asarray(calibrate, bool))
    beta = 0.0
    if evidence is not None and seen.any():
        term = _evidence_term(evidence, classes)
        rows = seen & inscope_rows
        masked = np.where(np.array([c != OUT_OF_SCOPE for c in classes]), 0.0, -np.inf)

        def accuracy(b):
            return np.mean(((oof[rows] + b * term[rows]) + masked).argmax(axis=1) == y[rows])

        beta = max(EVIDENCE_WEIGHTS, key=lambda b: (round(accuracy(b), 4), -b))
        oof = oof + beta * term
    temperature = _fit_temperature(oof[seen], y[seen]) if seen.sum() and len(classes) > 1 else 1.0
    W, b = _fit_lr(X, y, len(classes), opts)
    d = vectors.shape[1]
    model = IntentModel(classes, mean.astype(np.float32), scale, W[:d], W[d:], b, vectors[inscope_rows], temperature,
                        lexical_weight=opts.lexical_weight, evidence_weight=beta)
    if not seen.any():
        model.info = {"rows": len(y), "classes": len(classes), "seconds": round(time.perf_counter() - start, 2)}
        return model
    p = _softmax(oof[seen] / temperature)
    ys, ss = y[seen], sims[seen]
    if oos is not None and (ys == oos).any() and (ys != oos).any():
        inscope = p.copy()
        inscope[:, oos] = 0.0
        feats = _gate_features(inscope.max(axis=1), p[:, oos], ss)
        model.gate_w, model.gate_b = _fit_logistic(feats, ys != oos, balanced=True)
        gate = _sigmoid(feats @ model.gate_w + model.gate_b)
        model.gate_threshold = _best_threshold(gate, inscope.argmax(axis=1), ys, oos, opts.oos_weight,
                                               p[:, oos] < inscope.max(axis=1))
    # Platt scaling of the decision's raw probability onto its out-of-fold correctness.
    decided = model._decide(p, ss)  # platt is still the identity here
    raw = np.array([d.confidence for d in decided])
    right = np.array([d.name == classes[g] for d, g in zip(decided, ys)])
    a, c = _fit_logistic(_logit(raw)[:, None], right, balanced=False)
    model.platt = (float(a[0]), float(c)) if a[0] > 0 else (1.0, 0.0)
    final = model._decide(p, ss)
    model.info = {
        "rows": int(len(y)), "classes": len(classes), "out_of_scope_rows": int((y == oos).sum()) if oos is not None else 0,
        "cv_accuracy": round(float(np.mean([d.name == classes[g] for d, g in zip(final, ys)])), 4),
        "cv_ece": round(expected_calibration_error([d.confidence for d in final], [d.name == classes[g] for d, g in zip(final, ys)]), 4),
        "temperature": round(temperature, 4), "evidence_weight": beta, "gate_threshold": round(model.gate_threshold, 4),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return model


def _best_threshold(gate: np.ndarray, best: np.ndarray, y: np.ndarray, oos: int, weight: float,
                    allowed: np.ndarray) -> float:
    """The gate threshold maximising (1 - weight) * in-scope accuracy + weight * out-of-scope recall
    (`allowed`: rows whose first choice is an intent, not out_of_scope)."""
    ins, out = y != oos, y == oos
    best_t, best_score = 0.5, -1.0
    for t in np.unique(np.concatenate([[0.5], np.quantile(gate, np.linspace(0, 1, 201))])):
        accept = (gate >= t) & allowed
        acc = np.mean(accept[ins] & (best[ins] == y[ins]))
        recall = np.mean(~accept[out])
        score = (1 - weight) * acc + weight * recall
        if score > best_score + 1e-9:
            best_t, best_score = float(t), score
    return best_t


def expected_calibration_error(confidences, correct, bins: int = 10) -> float:
    """ECE: the bin-weighted gap between mean confidence and accuracy over `bins` equal-width bins."""
    conf = np.asarray(confidences, float)
    right = np.asarray(correct, float)
    if not len(conf):
        return 0.0
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum((which == b).mean() * abs(conf[which == b].mean() - right[which == b].mean())
                     for b in range(bins) if (which == b).any()))


def reliability(confidences, correct, bins: int = 10) -> list[dict]:
    """Per confidence bin: its range, row count, mean confidence and accuracy (the reliability diagram)."""
    conf = np.asarray(confidences, float)
    right = np.asarray(correct, float)
    which = np.minimum((conf * bins).astype(int), bins - 1) if len(conf) else np.zeros(0, int)
    out = []
    for b in range(bins):
        m = which == b
        out.append({"low": b / bins, "high": (b + 1) / bins, "n": int(m.sum()),
                    "confidence": round(float(conf[m].mean()), 4) if m.any() else None,
                    "accuracy": round(float(right[m].mean()), 4) if m.any() else None})
    return out
