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
        "onnx", description="passage encoder runtime: onnx, onnx-int8 (both need the installed default model or an "
        "ONNX export), torch (any sentence-transformers model), torch-bf16 (bfloat16: faster builds on CPUs with AMX) "
        "or hashing (the deterministic test fake)"
    )
    query_backend: Literal[QUERY_BACKENDS] = Field(
        "auto", description="runtime that encodes queries (same model): auto = onnx-int8 when backend is onnx "
        "(several times faster per query, vectors close to fp32); same = backend",
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
    approx_threshold: int = Field(50_000, ge=1, description="chunks from which kind=auto builds an HNSW index")
    flat_storage: Literal["fp16", "fp32"] = Field(
        "fp16", description="vectors of the flat index: fp16 halves its memory and scan time"
    )
    hnsw_m: int = Field(32, ge=2, description="HNSW links per vector (set at build time)")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW search breadth: higher finds more true neighbours, slower")
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists searched per query: higher finds more, slower")


class HybridSettings(BaseModel):
    method: Literal["z", "linear", "rrf"] = Field(
        "z", description="how dense and BM25 scores are fused: z (z-scored BM25 added to the cosine), linear "
        "(max-normalised BM25) or rrf (reciprocal rank fusion); see README, Fusion"
    )
    dense_weight: float = Field(1.0, ge=0, description="weight of the dense (cosine) score in the fusion")
    bm25_weight: float = Field(0.1, ge=0, description="z: weight of z-scored BM25; linear: of max-normalised BM25; rrf: of its ranks")
    rrf_k: int = Field(60, ge=1, description="rrf: the rank offset k of 1 / (k + rank)")
    candidates: int = Field(100, ge=1, description="candidates taken from each retriever before fusion")
    synonyms: bool = Field(True, description="BM25 queries also search the words of the KB's synonym groups (synonyms.yaml)")


class IntentSettings(BaseModel):
    """How the intent model is trained at index build time (assist.suggest.classifier)."""

    regularization: float = Field(30.0, gt=0, description="C of the logistic regression: higher fits the examples more closely")
    lexical_weight: float = Field(0.5, ge=0, description="weight of word / character n-grams next to the query vector")
    oos_weight: float = Field(
        0.5, gt=0, lt=1, description="cost of a missed out-of-scope request vs a lost in-scope answer; 0.5 = balanced accuracy"
    )
    folds: int = Field(5, ge=2, le=10, description="cross-validation folds that calibrate confidence and set the out-of-scope threshold")

    def options(self):
        from assist.suggest.classifier import TrainOptions

        return TrainOptions(regularization=self.regularization, lexical_weight=self.lexical_weight,
                            oos_weight=self.oos_weight, folds=self.folds)


class SuggestSettings(BaseModel):
    answers: int = Field(3, ge=1, le=20, description="answers returned by default")
    templates: int = Field(3, ge=0, le=20, description="templates returned by default")
    max_context_turns: int = Field(2, ge=0, description="earlier customer turns folded into a dependent follow-up")
    clarify_below: float = Field(0.5, ge=0, le=1, description="intent confidence below this -> a clarifying question is offered")
    clarify_margin: float = Field(0.15, ge=0, le=1, description="or when the two best intents' probabilities are closer than this")
    default_queue: str = Field("general", description="queue of intents that declare no route")
    supervisor_queue: str = Field("supervisor", description="queue for escalating intents and upset customers")
    intent_boost: float = Field(0.2, ge=0, description="score added (x confidence) to chunks of the detected intent")
    abstain_min_dense: float = Field(0.80, description="no answers when the best dense similarity is below this")
    abstain_min_dense_oos: float = Field(0.88, description="the same bar when the intent is out_of_scope")
    escalate_level: int = Field(2, ge=1, le=3, description="emotion level that raises escalate")
    latin_offset: float = Field(
        0.04, ge=0, description="thresholds lowered by this for mostly-Latin queries: English scores lower against a Chinese KB"
    )
    candidates: int = Field(40, ge=1, description="article rows (sections and FAQ questions) ranked per request")
    question_rows: bool = Field(True, description="match the customer's words against the KB's FAQ questions too")
    question_offset: float = Field(0.0, description="added to a FAQ question row's score before it is merged with the sections")
    direct_answers: bool = Field(True, description="a customer asking a FAQ question word for word gets its answer first")


class FeedbackRankingSettings(BaseModel):
    """Feedback-weighted ranking (assist.priors): off unless an eval shows it helps your KB."""

    weight: float = Field(0.0, ge=0, description="score added per unit of (an item's acceptance - the average); 0 = off")
    half_life_days: float = Field(14.0, gt=0, description="feedback this many days old counts half")
    strength: float = Field(20.0, gt=0, description="Beta prior strength: showings an item needs before its own rate dominates")
    refresh_seconds: int = Field(600, ge=10, description="how often the server recomputes the rates from the store")


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
    intent: IntentSettings = IntentSettings()
    suggest: SuggestSettings = SuggestSettings()
    feedback_ranking: FeedbackRankingSettings = FeedbackRankingSettings()
    keep_versions: int = Field(5, ge=1, description="index versions kept on disk (CURRENT is always kept)")
    # The API service (`assist serve`). Keys are a comma-separated str: pydantic-settings would parse a list as JSON.
    api_keys: str = Field("", repr=False, description="comma-separated API keys accepted in X-API-Key")
    admin_token: str = Field("", repr=False, description="bearer token for the admin endpoints")
    feedback_db: Path = Field(Path(".assist/feedback.db"), description="SQLite file of agent feedback, the suggestion log and help-centre events")
    database_url: str = Field(
        "", repr=False, description="postgresql://user:password@host:5432/db puts the store in PostgreSQL (shared by replicas; "
        "`assist db upgrade` first); empty = the SQLite file ASSIST_FEEDBACK_DB")
    store_key: str = Field(
        "", repr=False, description="comma-separated Fernet keys (`assist db new-key`) encrypting customer text in the store; the first "
        "encrypts, all decrypt (rotation: new key first, `assist db rekey`). Required by `assist serve` outside development mode")
    index_poll_seconds: float = Field(
        0.0, ge=0, description="serve the version the index dir's CURRENT names within this many seconds of its change "
        "(replicas sharing one index dir; CURRENT is looked at four times as often, loading takes the rest); "
        "0 = only on POST /v1/admin/reload")
    suggest_threads: int = Field(
        0, ge=-1, description="threads per worker that run /v1/suggest's pipeline while the worker has company (a request "
        "alone runs on the event loop, saving two thread hops): two requests' model passes overlap on two cores; 0 = two "
        "per core; -1 = always on the event loop, one request at a time per worker (run --workers = cores)")
    suggestion_log: bool = Field(True, description="record every suggest response (redacted query, intent, ids shown, latency) for `assist review`")
    experiments: str = Field(
        "", description="an A/B experiment: a YAML file or inline JSON with a name and arms of suggest-setting overrides "
        "or template variants (README, Experiments); empty = none")
    retention_days: int = Field(
        90, ge=0, description="feedback, suggestion log and help-centre events older than this many days are deleted "
        "(hourly by the server, or `assist data purge`); 0 keeps everything")
    dev_mode: bool = Field(False, description="development only: also accept the key dev-key and the admin token dev-admin")
    max_body_bytes: int = Field(65536, ge=1024, description="largest request body accepted (413 above)")
    max_turns: int = Field(50, ge=1, description="most turns in one conversation (422 above)")
    max_turn_chars: int = Field(2000, ge=1, description="most characters in one turn (422 above)")
    # The customer help centre (/help and /v1/public/*): no key, so limited per client address.
    public_enabled: bool = Field(True, description="serve the customer help centre (/help, /v1/public/*)")
    public_origins: str = Field("", description="comma-separated shop origins (https://shop.example.com) allowed to call /v1/public/* from a browser (CORS)")
    public_rate: float = Field(5.0, gt=0, description="public requests per second one client address may make, sustained (token bucket)")
    public_burst: int = Field(20, ge=1, description="public requests one client address may make at once (the bucket's size)")
    public_trusted_proxies: str = Field(
        "", description="comma-separated addresses or networks (10.0.0.0/8) of proxies whose X-Forwarded-For names the client; "
        "empty = the connecting address is the client")
    public_max_query_chars: int = Field(100, ge=1, le=2000, description="longest public search, in characters (422 above)")
    public_results: int = Field(8, ge=1, le=50, description="results a public search returns by default")
    public_result_margin: float = Field(
        0.15, ge=0, description="a public search lists results scoring within this of the best one (cosine units), not every distant match")
    public_cache_seconds: int = Field(60, ge=0, description="max-age of the public responses' Cache-Control")
    public_contact_url: str = Field("mailto:support@example.com", description="where the help centre's 'contact us' link leads (your chat, form or phone page)")


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


def settings_fields() -> list[tuple[str, object, str]]:
    """(environment variable, default, description) of every setting, in declaration order."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, BaseModel):
            for sub, subfield in type(default).model_fields.items():
                rows.append((f"ASSIST_{name}__{sub}".upper(), subfield.default, subfield.description or ""))
        else:
            rows.append((f"ASSIST_{name.upper()}", default, field.description or ""))
    return rows


def settings_help() -> str:
    """One line per environment variable, for `assist --help`."""
    return "\n".join(f"{env} (default {default}): {description}" for env, default, description in settings_fields())


def settings_table() -> str:
    """The README's configuration table (Markdown), generated from the fields so the two agree."""
    def cell(value) -> str:
        text = "(empty)" if value == "" else str(value)
        return text.replace("|", "\\|")

    lines = ["| variable | default | what it does |", "|---|---|---|"]
    for env, default, description in settings_fields():
        if env == "ASSIST_MODELS_DIR":
            default = "<venv>/share/assist/models"  # sys.prefix differs per machine
        lines.append(f"| `{env}` | `{cell(default)}` | {cell(description)} |")
    return "\n".join(lines)
