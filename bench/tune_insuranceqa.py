"""`assist model tune`'s training on InsuranceQA, measured on its validation set (research-only data: the
tuned model is a benchmark artifact under .assist/bench/, never committed, never put in use).

    python bench/tune_insuranceqa.py --lang zh [--limit-pairs N] [--epochs 1] [--max-minutes 30]
        [--freeze-layers 0] [--max-passage-tokens 128] [--batch-size 32] [--lr 3e-5] [--bf16] [--seed 0]

Trains the installed default model on ../shared/data/insuranceqa-<lang>/train.jsonl + train-corpus.jsonl
(the data folder's README: filtered so no training question or gold answer overlaps validation or
test), 5% of the training answers held out to pick the best state, with assist.tune.train (the loop
`assist model tune` runs). Then `assist eval retrieval`'s evaluation (bm25, dense, hybrid) over the
8,000-answer validation corpus, for the base and the tuned model, on the 2,000 validation questions
split by a stable hash into half A (choose settings on it) and half B (report), and on all of them.
"""

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, loadavg  # noqa: E402

from assist.config import DEFAULT_MODEL, get_settings  # noqa: E402
from assist.index.model import model_dir  # noqa: E402
from assist.tune import TuneOptions, file_pairs, split_held_out, train  # noqa: E402
from evals.retrieval import eval_corpus  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def halves(queries: Path, folder: Path) -> dict[str, Path]:
    rows = [line for line in queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    a, b = [], []
    for line in rows:
        key = hashlib.sha256(json.loads(line)["id"].encode()).digest()[0]
        (a if key % 2 == 0 else b).append(line)
    out = {"A": folder / "half-a.jsonl", "B": folder / "half-b.jsonl", "all": queries}
    out["A"].write_text("\n".join(a) + "\n", encoding="utf-8")
    out["B"].write_text("\n".join(b) + "\n", encoding="utf-8")
    return out


def evaluate(settings, corpus: Path, sets: dict[str, Path]) -> dict:
    out = {}
    for name, path in sets.items():
        report = eval_corpus(settings, corpus, path, ["bm25", "dense", "hybrid"])
        out[name] = {v: {k: report.data["variants"][v][k] for k in ("hit@1", "hit@5", "mrr@10")} for v in ("dense", "hybrid")}
        out[name]["queries"] = report.data["n_queries"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", choices=["zh", "en"], default="zh")
    ap.add_argument("--limit-pairs", type=int, default=0, help="train on the first N pairs (shuffled, seed) only")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-minutes", type=float, default=0.0)
    ap.add_argument("--freeze-layers", type=int, default=0)
    ap.add_argument("--max-passage-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads in training (0 = every core)")
    ap.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    s = get_settings()
    folder = DATA / f"insuranceqa-{args.lang}"
    base = model_dir(s.models_dir)
    pairs = file_pairs(folder / "train.jsonl", folder / "train-corpus.jsonl")
    if args.limit_pairs:
        import random

        random.Random(args.seed).shuffle(pairs)
        pairs = pairs[: args.limit_pairs]
    train_pairs, held = split_held_out(pairs, 0.05, args.seed)
    opts = TuneOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_minutes=args.max_minutes,
                       freeze_layers=args.freeze_layers, max_passage_tokens=args.max_passage_tokens, held_out=0.05,
                       bf16=args.bf16, seed=args.seed, threads=args.threads, eval_every=0)
    print(f"load {loadavg()}; {len(train_pairs)} training pairs, {len(held)} held out; {opts}", flush=True)

    def progress(row):
        if row["step"] % 20 == 0 or "held_out" in row:
            print(f"  step {row['step']}/{row['steps']} loss {row['loss']:.3f} {row['seconds']:.0f} s ETA {row['eta_seconds'] / 60:.1f} min"
                  + (f" held-out {row['held_out']}" if "held_out" in row else ""), flush=True)

    enc, result = train(base, train_pairs, held, opts, progress)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"trained {result.steps} steps in {result.seconds:.0f} s: {result.pairs_per_second:.2f} pairs/s, stopped {result.stopped}, "
          f"best step {result.best_step}; held-out {result.held_out_before} -> {result.held_out_after}; peak RSS {rss_gb:.2f} GB", flush=True)

    from assist.index.model import write_tuned

    work = ROOT / ".assist" / "bench" / "tuned-models"
    version = f"iqa-{args.lang}-{time.strftime('%Y%m%d-%H%M%S')}"
    tuned = write_tuned(work, version, base, enc.model.save_pretrained,
                        {"model": f"{DEFAULT_MODEL}+{version}", "kind": "benchmark (research-only data: never ship)",
                         "settings": vars(args) | {"json": str(args.json)}, "training": {k: v for k, v in result.to_dict().items() if k != "history"}})
    del enc
    with tempfile.TemporaryDirectory() as tmp:
        sets = halves(folder / "queries.jsonl", Path(tmp))
        tuned_settings = s.model_copy(update={"embedding": s.embedding.model_copy(update={"model": str(tuned)})})
        out = {"lang": args.lang, "args": vars(args) | {"json": str(args.json)}, "training": result.to_dict() | {"history": None},
               "peak_rss_gb": round(rss_gb, 2), "tuned_model": str(tuned), "loadavg": loadavg()}
        if not args.skip_base:
            out["base"] = evaluate(s, folder / "corpus.jsonl", sets)
        out["tuned"] = evaluate(tuned_settings, folder / "corpus.jsonl", sets)
    print(f"\n{'set':4s} {'variant':7s} {'model':6s} {'hit@1':>6s} {'hit@5':>6s} {'mrr@10':>7s}")
    for name in ("A", "B", "all"):
        for v in ("dense", "hybrid"):
            for model in ("base", "tuned"):
                if model in out:
                    m = out[model][name][v]
                    print(f"{name:4s} {v:7s} {model:6s} {m['hit@1']:6.3f} {m['hit@5']:6.3f} {m['mrr@10']:7.3f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
