"""Versioned indexes on disk: build, CURRENT pointer, rollback, embedding cache, load (search: `assist.index.search`).

Layout of an index folder:
    CURRENT                 name of the live version (replaced atomically)
    embed-cache.sqlite      vectors by (model id, content hash), shared by all versions
    <version>/manifest.json schema, model, chunk settings, KB hash, counts, build time
    <version>/chunks.jsonl  chunk metadata, row i = FAISS row i = BM25 document i
    <version>/vectors.npy   the normalised chunk vectors
    <version>/dense.faiss   FAISS inner-product index
    <version>/lexical/      bm25s files + the jieba user dictionary
    <version>/kb.json       snapshot of articles, templates and intents, so a version serves on its own
    <version>/intent-model.npz  the intent model trained on this KB (assist.suggest.classifier)
    <version>/assets/       the images the published articles show (the help centre serves them)
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from assist.config import ChunkSettings, DenseSettings, HybridSettings, IntentSettings, Settings, package_version
from assist.errors import AssistError, IndexMismatch, IndexNotFound
from assist.files import atomic_write_text
from assist.index.chunk import Chunk, chunk_kb
from assist.index.dense import build_dense, choose_kind, load_dense, save_dense
from assist.index.embed import Embedder, embedder_from_settings
from assist.index.lexical import LexicalIndex, user_words
from assist.index.search import Index
from assist.kb import ASSETS_DIR, KB, load_kb
from assist.suggest.classifier import MODEL_FILE, IntentModel

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CURRENT = "CURRENT"


# --- embedding cache -------------------------------------------------------------------------------


class EmbeddingCache:
    """Vectors keyed by (model id, sha256 of the embedded text), so unchanged chunks are never re-embedded."""

    def __init__(self, path: Path):
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, PRIMARY KEY (model, hash))")

    def get(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT hash, vec FROM vectors WHERE model = ? AND hash IN ({marks})", [model, *part])
            found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def put(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- versions and CURRENT --------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    version: str
    seq: int
    created_at: str
    chunks: int
    model: str
    current: bool


def current_version(index_dir: Path) -> str | None:
    pointer = Path(index_dir) / CURRENT
    if not pointer.exists():
        return None
    return pointer.read_text(encoding="utf-8").strip() or None


def list_versions(index_dir: Path) -> list[VersionInfo]:
    """Complete versions, oldest first (by build sequence: names can tie within a second)."""
    index_dir = Path(index_dir)
    current = current_version(index_dir)
    out = []
    if not index_dir.is_dir():
        return out
    for folder in sorted(index_dir.iterdir()):
        manifest = folder / "manifest.json"
        if folder.name.startswith(".") or not manifest.is_file():
            continue
        data = json.loads(manifest.read_text(encoding="utf-8"))
        out.append(VersionInfo(folder.name, data.get("seq", 0), data["created_at"], data["counts"]["chunks"], data["model"]["id"], folder.name == current))
    return sorted(out, key=lambda v: (v.seq, v.created_at, v.version))


def set_current(index_dir: Path, version: str) -> None:
    if not (Path(index_dir) / version / "manifest.json").is_file():
        raise IndexNotFound(f"no index version '{version}' in {index_dir} (see `assist index list`)")
    atomic_write_text(Path(index_dir) / CURRENT, version + "\n")


def rollback(index_dir: Path, version: str | None = None) -> str:
    """Point CURRENT at `version`, or at the version built before the current one."""
    index_dir = Path(index_dir)
    with _lock(index_dir):
        if version is None:
            names = [v.version for v in list_versions(index_dir)]
            current = current_version(index_dir)
            older = names[: names.index(current)] if current in names else []
            if not older:
                raise IndexNotFound(f"no version older than {current} to roll back to in {index_dir}")
            version = older[-1]
        set_current(index_dir, version)
    return version


@contextlib.contextmanager
def _lock(index_dir: Path):
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AssistError(f"another build or rollback is running on {index_dir}; try again when it ends") from None
        yield


# --- build -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    version: str
    path: str
    chunks: int
    embedded: int
    reused: int
    seconds: float
    intent_model: dict | None = None  # the trained intent model's stats (manifest "intent_model")


def build_index(
    kb_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    chunking: ChunkSettings = ChunkSettings(),
    dense: DenseSettings = DenseSettings(),
    intent: IntentSettings = IntentSettings(),
    keep_versions: int = 5,
    progress: bool = False,
) -> BuildResult:
    """Validate the KB, build a new version and make it CURRENT."""
    kb = load_kb(kb_dir)
    chunks = chunk_kb(kb, chunking.size, chunking.overlap)
    return build_from_chunks(
        chunks, index_dir, embedder, kb=kb, words=user_words(kb),
        chunking=chunking, dense=dense, intent=intent, keep_versions=keep_versions, progress=progress,
    )


def build_from_chunks(
    chunks: list[Chunk],
    index_dir: Path,
    embedder: Embedder,
    *,
    kb: KB | None = None,
    words: list[str] = (),
    chunking: ChunkSettings = ChunkSettings(),
    dense: DenseSettings = DenseSettings(),
    intent: IntentSettings = IntentSettings(),
    keep_versions: int = 5,
    progress: bool = False,
) -> BuildResult:
    """Build a version from ready chunks (a KB or an external corpus). CURRENT moves only at the end."""
    start = time.perf_counter()
    index_dir = Path(index_dir)
    if not chunks:
        raise AssistError("nothing to index: the knowledge base has no published articles or templates")
    with _lock(index_dir):
        for stale in index_dir.glob(".building-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        vectors, embedded = _embed_chunks(chunks, index_dir, embedder, progress)
        kb_hash = kb.content_hash if kb else text_hash("".join(c.chunk_id for c in chunks))
        version = _new_version_name(index_dir, kb_hash)
        work = index_dir / f".building-{version}"
        work.mkdir()
        np.save(work / "vectors.npy", vectors)
        save_dense(build_dense(vectors, dense), work / "dense.faiss")
        LexicalIndex.build([c.embed_text for c in chunks], list(words), kb.synonyms if kb else ()).save(work / "lexical")
        with open(work / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(dataclasses.asdict(c), ensure_ascii=False) + "\n")
        snapshot = (kb or KB(root="", articles=(), templates=(), intents=())).to_snapshot()
        intent_model = _train_intents(kb, chunks, vectors, index_dir, embedder, intent, progress) if kb else None
        if intent_model is not None:
            intent_model.save(work / MODEL_FILE)
        (work / "kb.json").write_text(json.dumps(snapshot, ensure_ascii=False), encoding="utf-8")
        if kb:
            _copy_assets(kb, work)
        seconds = time.perf_counter() - start
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "version": version,
            "seq": 1 + max((v.seq for v in list_versions(index_dir)), default=0),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "package_version": package_version(),
            "model": {"id": embedder.model_id, "dim": embedder.dim},
            "chunking": {"size": chunking.size, "overlap": chunking.overlap},
            "dense": {"kind": (kind := choose_kind(len(chunks), dense)),
                      **({"storage": dense.flat_storage} if kind == "flat" else {})},
            "kb": {
                "hash": kb_hash,
                "root": kb.root if kb else None,
                "articles": len(kb.published) if kb else 0,
                "templates": len(kb.templates) if kb else 0,
                "intents": len(kb.intents) if kb else 0,
            },
            "counts": {"chunks": len(chunks), "embedded": embedded, "reused": len(chunks) - embedded},
            "intent_model": intent_model.info if intent_model is not None else None,
            "build_seconds": round(seconds, 3),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        os.rename(work, index_dir / version)
        set_current(index_dir, version)
        _prune(index_dir, keep_versions)
    log.info("built index %s: %d chunks, %d embedded, %d reused", version, len(chunks), embedded, len(chunks) - embedded)
    return BuildResult(version, str(index_dir / version), len(chunks), embedded, len(chunks) - embedded, round(seconds, 3),
                       intent_model.info if intent_model is not None else None)


def _cached_vectors(cache_path: Path, model_id: str, texts: list[str], encode, batch: int, label: str,
                    progress: bool) -> tuple[np.ndarray, int]:
    """(vectors of `texts`, how many were encoded): only texts the cache has not seen under `model_id` are
    encoded, shortest first (little padding per batch), and committed per batch: a killed build keeps its work."""
    from rich.progress import Progress

    cache = EmbeddingCache(cache_path)
    try:
        hashes = [text_hash(t) for t in texts]
        known = cache.get(model_id, list(set(hashes)))
        text_of = dict(zip(hashes, texts))
        todo = sorted(dict.fromkeys(h for h in hashes if h not in known), key=lambda h: len(text_of[h]))
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(label, total=len(todo))
            for i in range(0, len(todo), batch):
                part = todo[i : i + batch]
                fresh = dict(zip(part, encode([text_of[h] for h in part])))
                cache.put(model_id, fresh)
                known.update(fresh)
                bar.advance(task, len(part))
        return np.stack([known[h] for h in hashes]).astype(np.float32), len(todo)
    finally:
        cache.close()


def _embed_chunks(chunks: list[Chunk], index_dir: Path, embedder: Embedder, progress: bool) -> tuple[np.ndarray, int]:
    """Vectors for all chunks, embedding only texts the cache has not seen with this model."""
    return _cached_vectors(index_dir / "embed-cache.sqlite", embedder.model_id, [c.embed_text for c in chunks],
                           embedder.encode_passages, 64, "embedding chunks", progress)


def query_vectors(texts: list[str], index_dir: Path, embedder: Embedder, progress: bool = False) -> np.ndarray:
    """Query-side vectors of `texts` (intent training rows), cached like chunk vectors under the query model."""
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    model_id = "query:" + getattr(embedder, "query_model_id", embedder.model_id)
    vectors, _ = _cached_vectors(Path(index_dir) / "embed-cache.sqlite", model_id, texts, embedder.encode_queries,
                                 128, "encoding intent examples", progress)
    return vectors


def _train_intents(kb: KB, chunks: list[Chunk], vectors: np.ndarray, index_dir: Path, embedder: Embedder,
                   settings: IntentSettings, progress: bool) -> IntentModel | None:
    from assist.suggest.intent import train_for_kb

    if progress and kb.intents:
        from rich.console import Console

        Console(stderr=True).print("training the intent model ...")
    model = train_for_kb(kb, chunks, lambda texts: query_vectors(texts, index_dir, embedder, progress), settings.options(), vectors)
    if model is not None:
        log.info("intent model: %s", model.info)
    return model


def _new_version_name(index_dir: Path, kb_hash: str) -> str:
    base = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{kb_hash[:6]}"
    name, n = base, 1
    while (index_dir / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _prune(index_dir: Path, keep: int) -> None:
    versions = list_versions(index_dir)
    for info in versions[:-keep]:
        if not info.current:
            shutil.rmtree(index_dir / info.version, ignore_errors=True)


def _copy_assets(kb: KB, work: Path) -> None:
    """The images the published articles show, copied into the version: it serves them on its own, and
    a rollback brings back the images of its time."""
    for name in sorted({n for a in kb.published for n in a.assets}):
        target = work / ASSETS_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(kb.root) / ASSETS_DIR / name, target)


# --- load ----------------------------------------------------------------------------------------


def _chunk_from_json(row: dict) -> Chunk:
    row["heading_path"] = tuple(row["heading_path"])
    row["intents"] = tuple(row["intents"])
    return Chunk(**row)


def load_index(
    index_dir: Path,
    embedder: Embedder,
    *,
    version: str | None = None,
    dense: DenseSettings = DenseSettings(),
    hybrid: HybridSettings = HybridSettings(),
) -> Index:
    """Load CURRENT (or `version`), refusing an index built for another model or a newer schema."""
    index_dir = Path(index_dir)
    version = version or current_version(index_dir)
    if version is None:
        raise IndexNotFound(f"no index in {index_dir}: run `assist index build` first")
    path = index_dir / version
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise IndexNotFound(f"index version '{version}' is missing or incomplete in {index_dir}")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if manifest.get("schema_version", 0) > SCHEMA_VERSION:
        raise IndexMismatch(f"index {version} has schema {manifest['schema_version']}, newer than this assist ({SCHEMA_VERSION}); upgrade assist or rebuild")
    built = manifest["model"]
    if _base_model(built["id"]) != _base_model(embedder.model_id) or built["dim"] != embedder.dim:
        raise IndexMismatch(
            f"index {version} was built with {built['id']} ({built['dim']}-d) but the configured model is "
            f"{embedder.model_id} ({embedder.dim}-d); rebuild with `assist index build` or change ASSIST_EMBEDDING__MODEL"
        )
    with open(path / "chunks.jsonl", encoding="utf-8") as f:
        chunks = [_chunk_from_json(json.loads(line)) for line in f]
    vectors = np.load(path / "vectors.npy", mmap_mode="r")
    kb = KB.from_snapshot(json.loads((path / "kb.json").read_text(encoding="utf-8")))
    index = Index(path, manifest, chunks, vectors, load_dense(path / "dense.faiss", dense), LexicalIndex.load(path / "lexical"), embedder, kb, hybrid)
    if (path / MODEL_FILE).is_file():
        index.intent_model = IntentModel.load(path / MODEL_FILE)
    return index


def open_index(settings: Settings, index_dir: Path | None = None, embedder: Embedder | None = None,
               version: str | None = None) -> Index:
    """Load an index version (CURRENT by default) with the configured embedder and dense / fusion settings."""
    return load_index(index_dir or settings.index_dir, embedder or embedder_from_settings(settings), version=version,
                      dense=settings.dense, hybrid=settings.hybrid)


def _base_model(model_id: str) -> str:
    """The model without its runtime suffix: int8 and fp32 vectors of one model are interchangeable at query time."""
    return model_id.split("@", 1)[0]
