"""Embedders: text -> L2-normalised float32 vectors, with separate query and passage encodings.

Heavy libraries (torch, sentence-transformers, onnxruntime) are imported inside constructors so that
importing this module, and the fake HashingEmbedder, stays fast.
"""

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from assist.config import BACKENDS, DEFAULT_MODEL, QUERY_BACKENDS, Settings
from assist.errors import ModelError
from assist.index.model import MANIFEST, ONNX_FP32, ONNX_INT8, model_is_installed, resolve_model


class EmbedderError(ModelError):
    """The embedder cannot be created (unknown backend, model not installed, ...)."""


class Embedder(Protocol):
    model_id: str  # recorded in the index manifest, e.g. "intfloat/multilingual-e5-small@onnx-int8"
    dim: int

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...  # float32 (n, dim), L2-normalised rows

    def encode_passages(self, texts: list[str]) -> np.ndarray: ...


def model_name(path: Path | str) -> str:
    """The name recorded in model ids: the installed default model keeps its hub name wherever it lives."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return str(path)


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model on CPU, loaded offline (no hub access).

    `bf16=True` runs the model in bfloat16: on CPUs with AMX (Sapphire Rapids and later) torch's
    oneDNN matmuls are much faster than fp32, so passages encode faster than on onnxruntime fp32 with
    vectors all but identical (README, "Why the defaults"). Without AMX / AVX512-BF16 it is slower
    than fp32: keep it for build machines that have them.
    """

    # Small batches: on one CPU thread bigger ones only add padding and cache misses; bf16 peaks at 8-16.
    def __init__(self, model: str | Path, *, batch_size: int | None = None, threads: int = 1, bf16: bool = False,
                 model_id: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the import: the hub client reads it then
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model), device="cpu", local_files_only=True)
        if bf16:
            self._model = self._model.to(torch.bfloat16)
        prompts = self._model.prompts or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else None
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size or (8 if bf16 else 4)
        self.model_id = model_id or f"{model_name(model)}@{'torch-bf16' if bf16 else 'torch'}"

    def _encode(self, texts: list[str], prompt_name: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vecs = self._model.encode(
            list(texts), prompt_name=prompt_name, batch_size=self.batch_size, convert_to_tensor=True,
            show_progress_bar=False,
        )
        return _normalize(vecs.float().numpy())  # normalised in float32: bf16 rounding would leave norms off 1

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)


class OnnxEmbedder:
    """The exported encoder on onnxruntime: tokenizers + mean pooling + L2, no torch. Fast path for queries."""

    # batch_size 1: on one CPU thread a batch computes nothing faster, it only adds padding and
    # activations that spill out of cache. It also gives int8 a per-text activation scale, so a passage's
    # vector no longer depends on which texts shared its batch, and intent examples match live queries.
    def __init__(self, model_dir: Path, *, quantized: bool = True, threads: int = 1, batch_size: int = 1,
                 max_length: int = 512, model_id: str | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = model_dir / (ONNX_INT8 if quantized else ONNX_FP32)
        # onnxruntime 1.32's SkipLayerNormalization kernel is several times slower than a plain
        # LayerNormalization + Add on short inputs, so that one fusion is off (vectors identical).
        # Every other optimisation stays on.
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                             disabled_optimizers=["SkipLayerNormFusion"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.no_padding()  # padding is done per length-sorted batch below
        pad = self._tokenizer.token_to_id("<pad>")
        self._pad_id = 0 if pad is None else pad
        prompts = {}
        cfg = model_dir / "config_sentence_transformers.json"
        if cfg.is_file():
            prompts = json.loads(cfg.read_text(encoding="utf-8")).get("prompts") or {}
        self._query_prefix = prompts.get("query", "")
        self._passage_prefix = prompts.get("passage", "")
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self.batch_size = batch_size
        self.model_id = model_id or f"{model_name(model_dir)}@{'onnx-int8' if quantized else 'onnx'}"

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return self._session.run(None, feeds)[0]

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if len(texts) == 1:  # the per-query path: no padding, no mask arithmetic
            ids = np.asarray(self._tokenizer.encode(prefix + texts[0]).ids, dtype=np.int64)[None, :]
            hidden = self._run(ids, np.ones_like(ids))
            return _normalize(hidden.mean(axis=1))
        encs = self._tokenizer.encode_batch([prefix + t for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        order = np.argsort(-lengths, kind="stable")  # similar lengths share a batch: little padding
        out = np.empty((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows[0]])
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encs[i].ids
            mask = (np.arange(width)[None, :] < lengths[rows][:, None]).astype(np.int64)
            hidden = self._run(ids, mask)
            summed = np.einsum("bsd,bs->bd", hidden, mask.astype(hidden.dtype))
            out[rows] = summed / lengths[rows][:, None]
        return _normalize(out)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._query_prefix)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prefix)


_WORD = re.compile(r"[a-z0-9]+")
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


@lru_cache(maxsize=65536)
def _bucket(token: str, dim: int) -> tuple[int, float]:
    h = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
    return h % dim, (1.0 if (h >> 63) else -1.0)


class HashingEmbedder:
    """A deterministic FAKE for tests: hashed ASCII words, Chinese characters and character bigrams.

    Shared tokens drive similarity, so ranking assertions in tests mean something. Not a real model.
    """

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.model_id = f"hashing-fake-{dim}"

    @staticmethod
    def tokens(text: str) -> list[str]:
        text = text.lower()
        out = _WORD.findall(text)
        for run in _HAN_RUN.findall(text):
            out.extend(run)
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for tok in self.tokens(text):
                col, sign = _bucket(tok, self.dim)
                out[row, col] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)  # a text without tokens stays all zeros

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)


class SplitEmbedder:
    """Passages on one backend, queries on another of the SAME model (e.g. fp32 passages, int8 queries).

    The index records the passage model (`model_id`), so vectors stay comparable with the cache and
    with indexes built before; the passage runtime loads only when a build needs it, so a serving
    process holds the query model alone.
    """

    def __init__(self, queries: Embedder, make_passages, passage_model_id: str):
        self.queries = queries
        self._make_passages = make_passages
        self._passages: Embedder | None = None
        self.model_id = passage_model_id
        self.query_model_id = queries.model_id
        self.dim = queries.dim

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.queries.encode_queries(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if self._passages is None:
            self._passages = self._make_passages()
        return self._passages.encode_passages(texts)


def resolve_query_backend(model: str, backend: str, query_backend: str, models_dir: Path) -> str:
    """The backend that encodes queries: "same" = `backend`; "auto" = onnx-int8 when the passages use
    an ONNX export or torch-bf16 and the model folder has the int8 export, else `backend`."""
    if query_backend == "same" or backend == "hashing":
        return backend
    if query_backend == "auto":
        if backend in ("onnx", "onnx-int8", "torch-bf16"):
            target = resolve_model(model, Path(models_dir))
            if model != DEFAULT_MODEL or model_is_installed(Path(models_dir)):
                if (Path(target) / ONNX_INT8).is_file():
                    return "onnx-int8"
        return backend
    return query_backend


def passage_model_id(model: str, backend: str, models_dir: Path) -> str:
    """The model id an index built with this model and passage backend records, without loading it."""
    if backend == "hashing":
        return HashingEmbedder().model_id
    return f"{model_name(resolve_model(model, Path(models_dir)))}@{backend}"


def describe(embedder: Embedder) -> str:
    """The model id, and the query runtime when queries use another one (e.g. int8 over fp32 passages)."""
    query_id = getattr(embedder, "query_model_id", None)
    return embedder.model_id if not query_id else f"{embedder.model_id} (queries {query_id})"


def embedder_from_settings(settings: Settings, *, build: bool = False) -> Embedder:
    """The configured embedder: the one way the CLI, the API, evals and benchmarks get it.

    `build=True` is for offline index builds: passages then encode on `passage_threads()` (every core
    by default) while queries keep `threads`; a server keeps `threads` for both.
    """
    e = settings.embedding
    return make_embedder(e.model, backend=e.backend, models_dir=settings.models_dir, threads=e.threads,
                         query_backend=e.query_backend, passage_threads=e.passage_threads() if build else None)


def make_embedder(model: str, *, backend: str, models_dir: Path, threads: int = 1,
                  query_backend: str = "auto", passage_threads: int | None = None) -> Embedder:
    """The embedder for a model name and backend (one of `assist.config.BACKENDS`).

    `query_backend` (one of `assist.config.QUERY_BACKENDS`; "auto" by default, as in Settings) may
    encode queries on another runtime of the same model than passages; see `resolve_query_backend`
    and `SplitEmbedder`. That passage runtime then runs `passage_threads` intra-op threads (default
    `threads`), so an offline build may use every core while queries keep one.
    """
    if query_backend not in QUERY_BACKENDS:
        raise EmbedderError(f"unknown query backend {query_backend!r}; choose one of {', '.join(QUERY_BACKENDS)}")
    qb = resolve_query_backend(model, backend, query_backend, models_dir)
    if qb != backend:
        queries = _make_one(model, backend=qb, models_dir=models_dir, threads=threads)
        passage_id = passage_model_id(model, backend, models_dir)
        build = passage_threads or threads
        return SplitEmbedder(queries, lambda: _make_one(model, backend=backend, models_dir=models_dir, threads=build), passage_id)
    return _make_one(model, backend=backend, models_dir=models_dir, threads=threads)


def _make_one(model: str, *, backend: str, models_dir: Path, threads: int = 1) -> Embedder:
    if backend not in BACKENDS:
        raise EmbedderError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "hashing":
        return HashingEmbedder()
    target = resolve_model(model, Path(models_dir))
    if model == DEFAULT_MODEL and not model_is_installed(Path(models_dir)):
        raise EmbedderError(
            f"the default model {DEFAULT_MODEL} is not installed in {models_dir}; run `assist model install`"
        )
    if backend in ("torch", "torch-bf16"):
        return SentenceTransformerEmbedder(target, threads=threads, bf16=backend == "torch-bf16")
    onnx_file = ONNX_INT8 if backend == "onnx-int8" else ONNX_FP32
    if not (Path(target) / onnx_file).is_file():
        if model == DEFAULT_MODEL:
            raise EmbedderError(f"{target} has no {onnx_file}; run `assist model install --force` to export it")
        raise EmbedderError(
            f"backend {backend!r} needs a folder with {onnx_file}, which {model!r} does not have; "
            "use backend 'torch' for this model"
        )
    return OnnxEmbedder(Path(target), quantized=backend == "onnx-int8", threads=threads)
