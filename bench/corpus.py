"""Benchmark corpora of 1k, 10k and 100k chunks, built once and cached under .assist/bench/<size>/.

    python bench/corpus.py [--sizes 1k,10k,100k] [--rebuild]

Rows, in order: the sample KB (kb/, articles and templates, ~480 chunks), the 8,000 InsuranceQA-zh
answers (read from ../shared/data, never copied into the repo), then synthetic passages.

Vectors:
  * KB chunks and InsuranceQA answers have REAL vectors of the passage model (onnx fp32 by default),
    taken from caches that already hold them (the eval indexes' embed-cache.sqlite, /tmp/assist-bench
    .npy files from bench/encode.py); anything missing is encoded once. They are kept in
    .assist/bench/real-vectors.sqlite.
  * Synthetic passages (every row past the 8,479 real ones: 1,521 of the 10k corpus, 91,521 of the
    100k one) recombine sentences of 2-3 real passages of one pool (InsuranceQA answers, or KB
    sections) into a new passage of realistic length. Their vectors are DERIVED, not encoded: the
    normalised mean of the sources' real vectors. That keeps search-time behaviour realistic
    (dimension, vector distribution, index kind, BM25 postings) but says nothing about retrieval
    quality at 10k/100k; quality is measured on the real InsuranceQA set (bench/langchain_compare.py).

Each size's index folder gets its embedding cache seeded with those vectors, so the normal
`build_from_chunks` path embeds nothing; `bench.json` there records what was built, so later runs
reuse the index unless the corpus changed or --rebuild is given.
"""

import argparse
import hashlib
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import BENCH_DIR, INSURANCEQA, ROOT, SIZES, embedder, read_jsonl, settings  # noqa: E402

from assist.index.chunk import Chunk, chunk_id, chunk_kb  # noqa: E402
from assist.index.store import EmbeddingCache, build_from_chunks, current_version, text_hash  # noqa: E402
from evals.io import eval_indexes_root  # noqa: E402
from evals.retrieval import corpus_chunks  # noqa: E402

SEED = 20261123
KB_SHARE = 0.1  # share of synthetic passages recombined from KB sections (the rest from InsuranceQA answers)
MAX_CHARS = 400  # the chunk size cap of the product (ASSIST_CHUNKING__SIZE)
_SENTENCE = re.compile(r"[^。！？；!?\n]+[。！？；!?]*")
REAL_STORE = "real-vectors.sqlite"


@dataclass
class Corpus:
    chunks: list[Chunk]
    vectors: np.ndarray  # float32 (n, dim), row i = chunk i
    n_real: int
    n_derived: int
    kb: object
    words: list[str]


class LazyEmbedder:
    """Stands in for the passage embedder at build time: the seeded cache answers every text, so the
    real model loads only if something is missing (and then encodes it for real)."""

    def __init__(self, model_id: str, dim: int, factory):
        self.model_id, self.dim, self._factory, self._inner = model_id, dim, factory, None
        self.encoded = 0

    def encode_passages(self, texts):
        if self._inner is None:
            self._inner = self._factory()
        self.encoded += len(texts)
        return self._inner.encode_passages(texts)

    def encode_queries(self, texts):
        if self._inner is None:
            self._inner = self._factory()
        return self._inner.encode_queries(texts)


def passage_model_id() -> str:
    """The model id the index records, e.g. intfloat/multilingual-e5-small@onnx (the passage backend)."""
    from assist.index.embed import passage_model_id as model_id

    s = settings()
    return model_id(s.embedding.model, s.embedding.backend, s.models_dir)


def passage_embedder():
    return embedder(build=True)  # passages on every core, as `assist index build` encodes them


def real_chunks():
    """(kb, user words, KB chunks, InsuranceQA chunks)."""
    from assist.index.lexical import user_words
    from assist.kb import load_kb

    s = settings()
    kb = load_kb(ROOT / "kb")
    kb_chunks = chunk_kb(kb, s.chunking.size, s.chunking.overlap)
    iqa = read_jsonl(INSURANCEQA / "corpus.jsonl")
    return kb, user_words(kb), kb_chunks, corpus_chunks(iqa)


def _known_caches() -> list[Path]:
    """SQLite embedding caches on this machine that may hold real vectors of these texts."""
    found = [BENCH_DIR / REAL_STORE, settings().index_dir / "embed-cache.sqlite"]
    found += sorted(eval_indexes_root(settings()).glob("*/embed-cache.sqlite"))
    return [p for p in found if p.is_file()]


def real_vectors(chunks: list[Chunk], model_id: str, log=print) -> np.ndarray:
    """Real passage vectors for `chunks`: from caches, the bench/encode.py .npy, else encoded once."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    hashes = [text_hash(c.embed_text) for c in chunks]
    found: dict[str, np.ndarray] = {}
    for path in _known_caches():
        todo = [h for h in set(hashes) if h not in found]
        if not todo:
            break
        cache = EmbeddingCache(path)
        try:
            found.update(cache.get(model_id, todo))
        finally:
            cache.close()
    todo = [h for h in dict.fromkeys(hashes) if h not in found]
    if todo:  # bench/encode.py caches InsuranceQA passages in corpus order (texts = title + text, titles empty)
        npy = Path("/tmp/assist-bench") / f"insuranceqa-zh-passages-{model_id.replace('/', '_')}.npy"
        if npy.is_file():
            rows = read_jsonl(INSURANCEQA / "corpus.jsonl")
            vecs = np.load(npy)
            if len(vecs) == len(rows):
                by_hash = {text_hash((r.get("title", "") + "\n" + r["text"]).strip()): v for r, v in zip(rows, vecs)}
                found.update((h, by_hash[h]) for h in todo if h in by_hash)
    todo = [h for h in dict.fromkeys(hashes) if h not in found]
    if todo:
        log(f"encoding {len(todo)} real passages not found in any cache (once; slow: ~40 passages/s on 2 cores)")
        embedder = passage_embedder()
        if embedder.model_id != model_id:
            raise SystemExit(f"passage embedder is {embedder.model_id}, expected {model_id}")
        text_of = {h: c.embed_text for h, c in zip(hashes, chunks)}
        for i in range(0, len(todo), 64):
            part = todo[i : i + 64]
            found.update(zip(part, embedder.encode_passages([text_of[h] for h in part])))
    store = EmbeddingCache(BENCH_DIR / REAL_STORE)
    try:
        have = store.get(model_id, list(set(hashes)))
        store.put(model_id, {h: found[h] for h in set(hashes) if h not in have})
    finally:
        store.close()
    return np.stack([found[h] for h in hashes]).astype(np.float32)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def synthetic(kb_rows: list[int], iqa_rows: list[int], real: list[Chunk], n: int, seed: int = SEED):
    """n passages recombined from 2-3 real passages of one pool; returns (chunks, source rows per chunk)."""
    rng = random.Random(seed)
    sents = {}
    out, sources, seen = [], [], {c.embed_text for c in real}
    while len(out) < n:
        pool = kb_rows if rng.random() < KB_SHARE else iqa_rows
        k = rng.choice((2, 3))
        picks = rng.sample(pool, k)
        target = min(MAX_CHARS, max(60, len(real[picks[0]].text)))  # as long as a real passage, within the cap
        parts = []
        for row in picks:
            ss = sents.get(row)
            if ss is None:
                ss = sents[row] = _sentences(real[row].text) or [real[row].text]
            start = rng.randrange(len(ss))
            budget, taken = target / k, 0
            for s in ss[start:] + ss[:start]:
                parts.append(s)
                taken += len(s)
                if taken >= budget:
                    break
        text = "".join(parts)
        if len(text) > MAX_CHARS:  # cut at a sentence end inside the cap, like the chunker would
            cut = max(text.rfind(p, 0, MAX_CHARS) for p in "。！？；")
            text = text[: cut + 1] if cut > MAX_CHARS // 3 else text[:MAX_CHARS]
        if text in seen:
            continue
        seen.add(text)
        article = f"syn-{len(out):06d}"
        out.append(Chunk(chunk_id(article, (), text), article, "article", "", (), text))
        sources.append(tuple(picks))
    return out, sources


def make_corpus(n: int, log=print) -> Corpus:
    """The first n rows of KB + InsuranceQA + synthetic, with real or derived vectors."""
    kb, words, kb_chunks, iqa_chunks = real_chunks()
    real = kb_chunks + iqa_chunks
    model_id = passage_model_id()
    t0 = time.perf_counter()
    real_vecs = real_vectors(real, model_id, log)
    log(f"real vectors: {len(real)} ({time.perf_counter() - t0:.1f}s)")
    if n <= len(real):
        return Corpus(real[:n], real_vecs[:n], n, 0, kb, words)
    kb_rows = [i for i, c in enumerate(kb_chunks) if c.kind == "article"]
    iqa_rows = list(range(len(kb_chunks), len(real)))
    t0 = time.perf_counter()
    syn, sources = synthetic(kb_rows, iqa_rows, real, n - len(real))
    derived = np.stack([real_vecs[list(src)].mean(axis=0) for src in sources])
    derived /= np.linalg.norm(derived, axis=1, keepdims=True)
    log(f"synthetic passages: {len(syn)} with derived vectors ({time.perf_counter() - t0:.1f}s)")
    return Corpus(real + syn, np.vstack([real_vecs, derived]).astype(np.float32), len(real), len(syn), kb, words)


def corpus_fingerprint(corpus: Corpus, kind: str) -> str:
    h = hashlib.sha256(kind.encode())
    for c in corpus.chunks:
        h.update(c.chunk_id.encode())
    return h.hexdigest()[:16]


def index_dir(size: str) -> Path:
    return BENCH_DIR / size


def ensure_index(size: str, rebuild: bool = False, log=print) -> dict:
    """Build (or reuse) the index of one benchmark size; returns what bench.json records."""
    corpus = make_corpus(SIZES[size], log)
    return ensure_built(size, corpus, rebuild, log)


def insuranceqa_corpus(log=print) -> Corpus:
    """The 8,000 InsuranceQA-zh answers alone, one chunk each, no KB (as `assist eval retrieval` indexes them)."""
    _, _, _, iqa_chunks = real_chunks()
    return Corpus(iqa_chunks, real_vectors(iqa_chunks, passage_model_id(), log), len(iqa_chunks), 0, None, [])


def ensure_built(name: str, corpus: Corpus, rebuild: bool = False, log=print) -> dict:
    """Build .assist/bench/<name> from a corpus through a seeded embedding cache, unless a matching build exists."""
    from assist.index.dense import choose_kind

    s = settings()
    n = len(corpus.chunks)
    folder = index_dir(name)
    meta_file = folder / "bench.json"
    kind = choose_kind(n, s.dense)
    fp = corpus_fingerprint(corpus, f"{kind}-{s.dense.flat_storage}" if kind == "flat" else kind)
    if not rebuild and meta_file.is_file() and current_version(folder):
        meta = json.loads(meta_file.read_text())
        if meta.get("fingerprint") == fp and (folder / meta["version"] / "manifest.json").is_file():
            meta["reused"] = True
            return meta
    folder.mkdir(parents=True, exist_ok=True)
    model_id = passage_model_id()
    cache = EmbeddingCache(folder / "embed-cache.sqlite")
    try:
        hashes = [text_hash(c.embed_text) for c in corpus.chunks]
        have = cache.get(model_id, list(set(hashes)))
        cache.put(model_id, {h: v for h, v in zip(hashes, corpus.vectors) if h not in have})
    finally:
        cache.close()
    embedder = LazyEmbedder(model_id, corpus.vectors.shape[1], passage_embedder)
    t0 = time.perf_counter()
    result = build_from_chunks(corpus.chunks, folder, embedder, kb=corpus.kb, words=corpus.words,
                               chunking=s.chunking, dense=s.dense, keep_versions=1)
    seconds = time.perf_counter() - t0
    meta = {
        "size": name, "chunks": n, "real": corpus.n_real, "derived": corpus.n_derived,
        "dense_kind": kind, "version": result.version, "fingerprint": fp, "model": model_id,
        "build_seconds": round(seconds, 2), "build_chunks_per_s": round(n / seconds, 1),
        "embedded": result.embedded, "reused": False,
    }
    meta_file.write_text(json.dumps(meta, indent=2))
    log(f"built {name}: {n} chunks ({meta['real']} real, {meta['derived']} derived vectors), "
        f"{kind}, {seconds:.1f}s = {meta['build_chunks_per_s']} chunks/s (warm cache)")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1k,10k,100k")
    ap.add_argument("--rebuild", action="store_true", help="rebuild even when a matching index exists")
    args = ap.parse_args()
    for size in args.sizes.split(","):
        meta = ensure_index(size, args.rebuild)
        print(json.dumps(meta))


if __name__ == "__main__":
    main()
