"""FAISS inner-product index over normalised vectors: build, save, load, search."""

from pathlib import Path

import numpy as np

from assist.config import DenseSettings


def choose_kind(n: int, settings: DenseSettings) -> str:
    if settings.kind != "auto":
        return settings.kind
    return "flat" if n < settings.approx_threshold else "hnsw"


def build_dense(vectors: np.ndarray, settings: DenseSettings):
    """An inner-product index; rows keep the order of `vectors` (row i = chunk i)."""
    import faiss

    n, dim = vectors.shape
    kind = choose_kind(n, settings)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = settings.hnsw_ef_search
    elif kind == "ivf" and n >= 1000:
        nlist = max(16, int(4 * np.sqrt(n)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = settings.ivf_nprobe
    elif settings.flat_storage == "fp16":  # flat, or IVF on too few vectors to train it
        # An exact scan over half the bytes: at 10k chunks the scan is memory bound, and fp16 rounding
        # moves cosines far less than the gaps between ranked rows.
        index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexFlatIP(dim)
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def save_dense(index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load_dense(path: Path, settings: DenseSettings):
    import faiss

    index = faiss.read_index(str(path))
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = settings.hnsw_ef_search
    if hasattr(index, "nprobe"):
        index.nprobe = settings.ivf_nprobe
    return index


def stores_vectors(index) -> bool:
    """True when the index keeps the vectors and hands rows back: float32 (flat, HNSW-flat) or fp16 flat."""
    import faiss

    if isinstance(index, faiss.IndexScalarQuantizer):
        return index.sq.qtype == faiss.ScalarQuantizer.QT_fp16
    return isinstance(index, (faiss.IndexFlat, faiss.IndexHNSWFlat))


def search_dense(index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, rows) for one normalised query vector; rows of -1 are dropped."""
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    scores, rows = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
    keep = rows[0] >= 0
    return scores[0][keep], rows[0][keep]
