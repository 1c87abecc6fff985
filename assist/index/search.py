"""Search over one loaded index version: dense + BM25 candidates, fusion, top-k hits.

`Index` holds what `assist.index.store.load_index` read from a version folder; `Index.search` is the
one retrieval path of the product, and can report how long each of its stages took.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assist.config import HybridSettings
from assist.errors import AssistError
from assist.index.chunk import Chunk
from assist.index.dense import search_dense, stores_vectors
from assist.index.embed import Embedder
from assist.index.lexical import LexicalIndex
from assist.kb import KB

MODES = ("bm25", "dense", "hybrid")
# Up to this many rows of one kind (e.g. templates) are scored exactly, without the FAISS index.
EXACT_ROWS = 4096


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first (ties keep their order)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


# --- fusion: one function per method ---------------------------------------------------------------


def fuse_z(dense: dict[int, float], bm25: dict[int, float], rows: set[int], settings: HybridSettings) -> dict[int, float]:
    """BM25 z-scored over the candidates, scaled to the spread of the dense scores and added to the
    cosine: z-score fusion kept in cosine units, so later boosts and thresholds stay meaningful.
    The default: on InsuranceQA-zh it was the only fusion that beat dense alone on a held-out half."""
    order = list(rows)
    d = np.array([dense.get(r, 0.0) for r in order])
    b = np.array([bm25.get(r, 0.0) for r in order])
    bz = (b - b.mean()) / b.std() if b.std() > 0 else np.zeros_like(b)
    fused = settings.dense_weight * d + settings.bm25_weight * d.std() * bz
    return dict(zip(order, fused.tolist()))


def fuse_linear(dense: dict[int, float], bm25: dict[int, float], rows: set[int], settings: HybridSettings) -> dict[int, float]:
    """Cosine + weight x BM25 / the best BM25 score."""
    top = max(bm25.values(), default=0.0) or 1.0
    return {r: settings.dense_weight * dense.get(r, 0.0) + settings.bm25_weight * bm25.get(r, 0.0) / top for r in rows}


def fuse_rrf(dense: dict[int, float], bm25: dict[int, float], rows: set[int], settings: HybridSettings) -> dict[int, float]:
    """Weighted reciprocal rank fusion; a row missing from one list ranks just after its last row."""
    d_rank = {r: i for i, r in enumerate(sorted(dense, key=lambda r: -dense[r]))}
    b_rank = {r: i for i, r in enumerate(sorted(bm25, key=lambda r: -bm25[r]))}
    return {
        r: settings.dense_weight / (settings.rrf_k + d_rank.get(r, len(d_rank)) + 1)
        + settings.bm25_weight / (settings.rrf_k + b_rank.get(r, len(b_rank)) + 1)
        for r in rows
    }


FUSIONS: dict[str, Callable[..., dict[int, float]]] = {"z": fuse_z, "linear": fuse_linear, "rrf": fuse_rrf}


def fuse(dense: dict[int, float], bm25: dict[int, float], rows: set[int], settings: HybridSettings) -> dict[int, float]:
    """Fused scores of the candidate rows by the configured method (`settings.method`)."""
    return FUSIONS[settings.method](dense, bm25, rows, settings)


# --- the loaded index ------------------------------------------------------------------------------


class Index:
    """One loaded index version: dense + BM25 over the same chunk rows, and its KB snapshot."""

    def __init__(self, path: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray, dense_index,
                 lexical: LexicalIndex, embedder: Embedder, kb: KB, hybrid: HybridSettings):
        self.path = path
        self.manifest = manifest
        self.version = manifest["version"]
        self.chunks = chunks
        self.vectors = vectors
        self.dense_index = dense_index
        self.lexical = lexical
        self.embedder = embedder
        self.kb = kb
        self.hybrid = hybrid
        self.intent_model = None  # the version's trained intent model (assist.suggest.classifier), when it has one
        self._kind_rows: dict[str, np.ndarray] = {}
        self._kind_mask: dict[str, np.ndarray] = {}
        self._kind_vectors: dict[str, np.ndarray] = {}
        self._vectors_in_faiss = stores_vectors(dense_index)
        self._leads: dict[str, Chunk] | None = None
        self._public_leads: dict[str, Chunk] | None = None
        self._questions: dict[str, tuple[str, str]] | None = None

    @property
    def has_questions(self) -> bool:
        return len(self.rows_of_kind("question")) > 0

    def lead_section(self, article_id: str) -> Chunk | None:
        """An article's first section (what an answer shows when only a FAQ question of it matched)."""
        if self._leads is None:
            leads: dict[str, Chunk] = {}
            for c in self.chunks:
                if c.kind == "article":
                    leads.setdefault(c.article_id, c)
            self._leads = leads
        return self._leads.get(article_id)

    def direct_question(self, text: str) -> tuple[str, str] | None:
        """(article id, question) when `text` is one of the KB's FAQ questions after normalisation
        (punctuation, full / half width, filler words): the customer asked it word for word."""
        from assist.kb import normalize_question

        if self._questions is None:
            found: dict[str, tuple[str, str]] = {}
            for c in self.chunks:
                if c.question:
                    found.setdefault(normalize_question(c.text), (c.article_id, c.text))
            self._questions = found
        key = normalize_question(text)
        return self._questions.get(key) if key else None

    def public_lead(self, article_id: str) -> Chunk | None:
        """An article's first section that customers may see (None: nothing of it is public)."""
        if self._public_leads is None:
            leads: dict[str, Chunk] = {}
            for c in self.chunks:
                if c.kind == "article" and c.public:
                    leads.setdefault(c.article_id, c)
            self._public_leads = leads
        return self._public_leads.get(article_id)

    def rows_of_kind(self, kind: str) -> np.ndarray:
        """Rows of one kind: "article", "question", "template", or "public-article" / "public-question"
        (the rows customers may see)."""
        if kind not in self._kind_rows:
            public, _, base = kind.rpartition("-") if kind.startswith("public-") else ("", "", kind)
            self._kind_rows[kind] = np.asarray(
                [i for i, c in enumerate(self.chunks) if c.kind == base and (not public or c.public)], dtype=np.int64)
        return self._kind_rows[kind]

    def _vectors_of_kind(self, kind: str) -> np.ndarray:
        """The vectors of a small kind's rows, gathered once into one contiguous float32 block (not per
        request from the memory-mapped file)."""
        if kind not in self._kind_vectors:
            self._kind_vectors[kind] = np.ascontiguousarray(self.vectors[self.rows_of_kind(kind)], dtype=np.float32)
        return self._kind_vectors[kind]

    def _vectors_for(self, rows: list[int], kind: str | None) -> np.ndarray:
        """Vectors of some rows: from the kind's gathered block when it has one (no FAISS reconstruct)."""
        if kind is not None and kind in self._kind_vectors:
            positions = np.searchsorted(self.rows_of_kind(kind), np.asarray(rows, dtype=np.int64))
            return self._kind_vectors[kind][positions]
        return self.vectors_of(rows)

    def mask_of_kind(self, kind: str) -> np.ndarray:
        """Boolean row mask of one kind: filtering FAISS rows with it costs O(depth), not O(chunks)."""
        if kind not in self._kind_mask:
            mask = np.zeros(len(self.chunks), dtype=bool)
            mask[self.rows_of_kind(kind)] = True
            self._kind_mask[kind] = mask
        return self._kind_mask[kind]

    def vectors_of(self, rows: list[int]) -> np.ndarray:
        """The stored vectors of a few rows. Read from the FAISS index when it keeps them (the values
        its search scores), so the memory-mapped vectors.npy stays untouched: one resident copy of the
        vectors per process instead of two."""
        if self._vectors_in_faiss:
            return self.dense_index.reconstruct_batch(np.asarray(rows, dtype=np.int64))
        return np.asarray(self.vectors[rows])

    def search(self, text: str, k: int = 10, mode: str = "hybrid", kind: str | None = None,
               query_vector: np.ndarray | None = None, timings: dict[str, float] | None = None) -> list[Hit]:
        """Top-k chunk hits for `text`; `kind` (see `rows_of_kind`) restricts the chunks searched.

        `query_vector` lets a caller that already encoded the query (the suggest pipeline) skip a
        second encode. A `timings` dict receives the milliseconds of each stage run: encode, dense,
        bm25, fusion, rank.
        """
        if mode not in MODES:
            raise AssistError(f"unknown search mode '{mode}' (use one of {', '.join(MODES)})")
        clock = _Clock(timings)
        want = max(k, self.hybrid.candidates)
        dense_s = bm25_s = query = None
        if mode in ("dense", "hybrid"):
            query = self.embedder.encode_queries([text])[0] if query_vector is None else query_vector
            clock.lap("encode")
            dense_s = self._dense(query, want, kind)
            clock.lap("dense")
        if mode in ("bm25", "hybrid"):
            bm25_s = self._bm25(text, want, kind)
            clock.lap("bm25")
        if mode == "dense":
            fused = dense_s
        elif mode == "bm25":
            fused = bm25_s
        else:
            candidates = set(dense_s) | set(bm25_s)
            missing = [r for r in candidates if r not in dense_s]
            if missing:  # exact cosine for BM25-only candidates, so fusion compares like with like
                dense_s.update(zip(missing, (self._vectors_for(missing, kind) @ query).tolist()))
            fused = fuse(dense_s, bm25_s, candidates, self.hybrid)
            clock.lap("fusion")
        order = sorted(fused, key=lambda r: (-fused[r], r))[:k]
        hits = [
            Hit(self.chunks[r], float(fused[r]), None if dense_s is None else dense_s.get(r),
                None if bm25_s is None else bm25_s.get(r, 0.0))
            for r in order
        ]
        clock.lap("rank")
        return hits

    def _dense(self, query: np.ndarray, want: int, kind: str | None) -> dict[int, float]:
        allowed = None if kind is None else self.rows_of_kind(kind)
        if allowed is not None and len(allowed) <= EXACT_ROWS:  # few rows (templates, questions): exact, no index
            sims = self._vectors_of_kind(kind) @ query
            top = top_rows(sims, want)
            return dict(zip(allowed[top].tolist(), sims[top].tolist()))
        depth = want if allowed is None else want * 4
        scores, rows = search_dense(self.dense_index, query, depth)
        if allowed is not None:
            keep = self.mask_of_kind(kind)[rows]
            rows, scores = rows[keep], scores[keep]
        return dict(zip(rows.tolist(), scores.tolist()))

    def _bm25(self, text: str, want: int, kind: str | None) -> dict[int, float]:
        all_bm25 = self.lexical.scores(text, self.hybrid.synonyms)
        rows = np.flatnonzero(all_bm25 > 0)  # rows sharing a term: usually a small share of the corpus
        if kind is not None:
            rows = rows[self.mask_of_kind(kind)[rows]]
        part = all_bm25[rows]
        return {int(rows[i]): float(part[i]) for i in top_rows(part, want)}


class _Clock:
    """Milliseconds per stage into a caller's dict; free when no dict is given."""

    def __init__(self, out: dict[str, float] | None):
        self.out = out
        self.last = time.perf_counter() if out is not None else 0.0

    def lap(self, name: str) -> None:
        if self.out is not None:
            now = time.perf_counter()
            self.out[name] = self.out.get(name, 0.0) + (now - self.last) * 1000
            self.last = now
