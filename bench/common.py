"""Shared helpers of the benchmarks: paths, one-thread runtime, percentiles, RSS, load average.

Import this module before numpy/onnxruntime/faiss in a benchmark script: it pins every math library to
one thread (the production setting: one intra-op thread per worker process).
"""

import json
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.io import read_jsonl  # noqa: E402, F401  (re-exported for the benchmark scripts)

SHARED_DATA = ROOT.parent / "shared" / "data"
INSURANCEQA = SHARED_DATA / "insuranceqa-zh"
BENCH_DIR = ROOT / ".assist" / "bench"  # gitignored (.assist/)
CONVERSATIONS = ROOT / "evals" / "queries.jsonl"
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}


def size_name(n: int) -> str:
    return next((k for k, v in SIZES.items() if v == n), str(n))


def conversations() -> list[dict]:
    """The labelled multi-turn conversations of the sample KB, as suggest requests."""
    return [{"conversation": r["conversation"], "customer": r.get("customer") or {}} for r in read_jsonl(CONVERSATIONS)]


def percentiles(values, ps=(50, 95, 99)) -> dict[str, float]:
    import numpy as np

    if len(values) == 0:
        return {f"p{p}_ms": float("nan") for p in ps}
    arr = np.asarray(values, dtype=np.float64)
    return {f"p{p}_ms": round(float(np.percentile(arr, p)), 3) for p in ps}


def memory_mb() -> dict[str, float]:
    """This process's resident memory from /proc/self/status: total, anonymous (heap) and file-backed (mmap)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": out.get("VmRSS"), "rss_anon_mb": out.get("RssAnon"), "rss_file_mb": out.get("RssFile"), "peak_rss_mb": out.get("VmHWM")}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def settings():
    from assist.config import get_settings

    return get_settings()


def embedder(*, build: bool = False, **embedding):
    """The configured embedder (as the service builds it), with some embedding settings replaced,
    e.g. embedder(backend="torch", query_backend="same") to measure one runtime alone."""
    from assist.index.embed import embedder_from_settings

    s = settings()
    if embedding:
        s = s.model_copy(update={"embedding": s.embedding.model_copy(update=embedding)})
    return embedder_from_settings(s, build=build)


def query_embedder():
    """The embedder the service uses at query time (the configured query backend, one thread)."""
    return embedder(threads=1)


def emit(obj) -> None:
    """One JSON line on stdout, for the parent process of run_all.py."""
    print("@@JSON " + json.dumps(obj, ensure_ascii=False), flush=True)


def parse_emitted(text: str):
    for line in text.splitlines():
        if line.startswith("@@JSON "):
            return json.loads(line[7:])
    raise RuntimeError("the benchmark subprocess printed no result")
