"""Files of the evals: JSONL datasets, and the cached indexes evals build."""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from assist.config import Settings
from assist.errors import AssistError

# The variants of `assist eval run` (defined in evals.conversations): here, where the CLI can read them cheaply.
CONVERSATION_VARIANTS = ("full", "hybrid", "dense", "bm25", "last_turn", "no_questions", "no_direct", "no_synonyms")
EVAL_INDEXES = "eval-indexes"  # beside the index folder: <index_dir>/../eval-indexes/<key>/


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file (blank lines skipped); a bad line is an error naming path and line."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise AssistError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistError(f"cannot read {path}: {exc}") from None
    return rows


def write_jsonl(path: Path, rows: Iterable[dict], append: bool = False) -> None:
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_conversations(dataset: Path) -> list[dict]:
    """Labelled conversations: a folder with queries.jsonl, or a .jsonl file."""
    path = dataset / "queries.jsonl" if dataset.is_dir() else dataset
    if not path.is_file():
        raise AssistError(f"no labelled conversations at {path}")
    return read_jsonl(path)


def eval_indexes_root(settings: Settings) -> Path:
    """The folder holding every eval index (each with its own embedding cache)."""
    return settings.index_dir.parent / EVAL_INDEXES


def eval_index_dir(settings: Settings, corpus: Path | None = None, model_id: str = "") -> Path:
    """Where an eval index lives: `kb` for the KB eval, else a key of the corpus file and the model,
    so a corpus indexed once with a model is found again (its vectors come from the cache)."""
    if corpus is None:
        return eval_indexes_root(settings) / "kb"
    key = hashlib.sha256(f"{Path(corpus).resolve()}|{model_id}".encode()).hexdigest()[:12]
    return eval_indexes_root(settings) / key
