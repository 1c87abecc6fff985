"""One typed Settings object, read from ASSIST_* environment variables and an optional `.env`."""

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
# Encoder runtimes (assist.index.embed): "hashing" is the deterministic fake of the tests.
BACKENDS = ("onnx-int8", "onnx", "torch", "torch-bf16", "hashing")
# Runtimes that may encode queries: "same" = the passage backend; "auto" = onnx-int8 over an ONNX export.
QUERY_BACKENDS = ("same", "auto", "onnx-int8", "onnx", "torch")


class EmbeddingSettings(BaseModel):
    model: str = Field(DEFAULT_MODEL, description="sentence-transformers model name or path")
    backend: Literal[BACKENDS] = Field(
        "onnx", description="passage encoder runtime; onnx/onnx-int8 need the installed default model; "
        "torch-bf16 builds 2x faster on CPUs with AMX"
    )
    query_backend: Literal[QUERY_BACKENDS] = Field(
        "auto", description="runtime that encodes queries (same model): auto = onnx-int8 when backend is onnx "
        "(4x faster per query, vectors within cosine 0.997 of fp32); same = backend",
    )
    threads: int = Field(1, ge=1, description="intra-op threads per process")
    build_threads: int = Field(
        0, ge=0, description="intra-op threads that encode passages in CLI builds when queries use another runtime "
        "(0 = every CPU core); the API server always uses `threads`",
    )

    def passage_threads(self) -> int:
        """Threads for an offline build's passage encoding: `build_threads`, or every CPU core."""
        return self.build_threads or os.cpu_count() or 1


class ChunkSettings(BaseModel):
    size: int = Field(400, ge=50, description="max characters per chunk")
    overlap: int = Field(40, ge=0, description="characters shared by neighbouring chunks of one section")


class DenseSettings(BaseModel):
    kind: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="FAISS index type; auto = flat below approx_threshold chunks, HNSW above"
    )
    approx_threshold: int = Field(50_000, ge=1)
    flat_storage: Literal["fp16", "fp32"] = Field(
        "fp16", description="vectors of the flat index: fp16 halves its memory and scan time (top-100 agreement 0.999)"
    )
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nprobe: int = 16


class HybridSettings(BaseModel):
    method: Literal["z", "linear", "rrf"] = Field("z", description="how dense and BM25 scores are fused (see README)")
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(0.1, ge=0, description="z: weight of z-scored BM25; linear: of max-normalised BM25; rrf: of its ranks")
    rrf_k: int = Field(60, ge=1)
    candidates: int = Field(100, ge=1, description="candidates taken from each retriever before fusion")


class SuggestSettings(BaseModel):
    answers: int = Field(3, ge=1, le=20, description="answers returned by default")
    templates: int = Field(3, ge=0, le=20, description="templates returned by default")
    max_context_turns: int = Field(2, ge=0, description="earlier customer turns folded into a dependent follow-up")
    intent_oos_threshold: float = Field(0.88, description="best intent similarity below this -> out_of_scope")
    intent_temperature: float = Field(0.02, gt=0)
    intent_keyword_bonus: float = Field(0.02, ge=0)
    intent_boost: float = Field(0.2, ge=0, description="score added (x confidence) to chunks of the detected intent")
    abstain_min_dense: float = Field(0.80, description="no answers when the best dense similarity is below this")
    abstain_min_dense_oos: float = Field(0.88, description="the same bar when the intent is out_of_scope")
    escalate_level: int = Field(2, ge=1, le=3, description="emotion level that raises escalate")
    latin_offset: float = Field(
        0.04, ge=0, description="thresholds lowered by this for mostly-Latin queries: English scores lower against a Chinese KB"
    )


class Settings(BaseSettings):
    """Every setting of assist. Nested groups use `__`, e.g. ASSIST_EMBEDDING__BACKEND=torch."""

    model_config = SettingsConfigDict(
        env_prefix="ASSIST_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    kb_dir: Path = Field(Path("kb"), description="knowledge base folder")
    index_dir: Path = Field(Path(".assist/index"), description="folder of index versions and CURRENT")
    models_dir: Path = Field(
        Path(sys.prefix) / "share" / "assist" / "models",
        description="where `assist model install` writes the default model",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkSettings = ChunkSettings()
    dense: DenseSettings = DenseSettings()
    hybrid: HybridSettings = HybridSettings()
    suggest: SuggestSettings = SuggestSettings()
    keep_versions: int = Field(5, ge=1, description="index versions kept on disk (CURRENT is always kept)")
    # The API service (`assist serve`). Keys are a comma-separated str: pydantic-settings would parse a list as JSON.
    api_keys: str = Field("", repr=False, description="comma-separated API keys accepted in X-API-Key")
    admin_token: str = Field("", repr=False, description="bearer token for the admin endpoints")
    feedback_db: Path = Field(Path(".assist/feedback.db"), description="SQLite file of agent feedback")
    dev_mode: bool = Field(False, description="development only: also accept the key dev-key and the admin token dev-admin")
    max_body_bytes: int = Field(65536, ge=1024, description="largest request body accepted (413 above)")
    max_turns: int = Field(50, ge=1, description="most turns in one conversation (422 above)")
    max_turn_chars: int = Field(2000, ge=1, description="most characters in one turn (422 above)")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


@lru_cache
def package_version() -> str:
    """The installed assist version (recorded in index manifests, shown by the API)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("assist")
    except PackageNotFoundError:
        return "0+unknown"


def settings_help() -> str:
    """One line per environment variable, for `assist --help`."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, BaseModel):
            for sub, subfield in type(default).model_fields.items():
                env = f"ASSIST_{name}__{sub}".upper()
                lines.append(f"{env} (default {subfield.default})")
        else:
            lines.append(f"ASSIST_{name.upper()} (default {default})")
    return "\n".join(lines)
