"""Fine-tuning the embedding model on a team's own pairs (question -> passage), on CPU.

Pairs come from the KB (FAQ questions -> their entry, intent examples -> the articles written for the
intent, headings -> their section, template titles -> template bodies), from agents' feedback (the
redacted conversation of a `used` suggestion -> the item; `edited` weighs less) and from an external
set in the eval format (queries.jsonl + corpus.jsonl). Training is a plain torch loop: mean-pooled,
L2-normalised vectors with the E5 prefixes, a contrastive loss over in-batch negatives (no two pairs
with the same positive in one batch), the word embeddings frozen. A held-out slice of the pairs is
scored during training and the best state is what is kept, also when time runs out or Ctrl+C stops it.
"""

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assist.index.chunk import chunk_article, chunk_template, split_sections
from assist.index.model import PROMPTS
from assist.kb import KB


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    group: str  # the positive's id: one pair per group in a batch, else a batch holds a false negative
    source: str  # kb-faq | kb-intent | kb-heading | kb-template | feedback-used | feedback-edited | pairs
    weight: float = 1.0


def kb_pairs(kb: KB, size: int = 400, overlap: int = 40) -> list[Pair]:
    """What the KB itself says a customer may ask and where the answer is. Never reads eval cases."""
    pairs: list[Pair] = []
    first_chunk: dict[str, str] = {}
    for article in kb.published:
        chunks = chunk_article(article, size, overlap)
        if not chunks:
            continue
        first_chunk[article.id] = chunks[0].embed_text
        for q in article.questions:
            pairs.append(Pair(q, chunks[0].embed_text, article.id, "kb-faq"))
        for c in chunks:
            if c.heading_path and len(c.heading_path) > 1:  # the title alone is no question for a section
                pairs.append(Pair(c.heading_path[-1], c.embed_text, c.chunk_id, "kb-heading"))
    by_intent: dict[str, list[str]] = {}
    for article in kb.published:
        for name in article.intents:
            if article.id in first_chunk:
                by_intent.setdefault(name, []).append(article.id)
    for intent in kb.intents:
        articles = by_intent.get(intent.name, [])
        for n, example in enumerate(intent.examples if articles else ()):
            # One article per example, in turn: the same question with two positives would make each the
            # other's negative.
            article_id = articles[n % len(articles)]
            pairs.append(Pair(example, first_chunk[article_id], article_id, "kb-intent", 0.5))
    for template in kb.templates:
        pairs.append(Pair(template.title, chunk_template(template).embed_text, template.id, "kb-template", 0.5))
    return _dedupe(pairs)


def feedback_pairs(store, kb: KB, limit: int = 100_000, edited_weight: float = 0.5) -> list[Pair]:
    """Agents' `used` (and, weighted lower, `edited`) suggestions: the conversation's customer turns, as
    the store keeps them (PII-redacted), -> the article or template used."""
    passages = {a.id: chunk_article(a)[0].embed_text for a in kb.published if split_sections(a.title, a.body)}
    passages.update({t.id: chunk_template(t).embed_text for t in kb.templates})
    pairs = []
    for event, source, weight in (("used", "feedback-used", 1.0), ("edited", "feedback-edited", edited_weight)):
        for e in store.events(event, limit=limit):
            text = " ".join(t["text"] for t in (e.conversation or []) if t.get("role") == "customer")[-500:]
            if text and e.suggestion_id in passages:
                pairs.append(Pair(text, passages[e.suggestion_id], e.suggestion_id, source, weight))
    return _dedupe(pairs)


def file_pairs(queries: Path, corpus: Path) -> list[Pair]:
    """An external set in the eval format: each query -> each of its relevant documents."""
    docs = {}
    for line in Path(corpus).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            docs[row["id"]] = f"{row['title']}\n{row['text']}" if row.get("title") else row["text"]
    pairs = []
    for line in Path(queries).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            for doc in row.get("relevant", []):
                if doc in docs:
                    pairs.append(Pair(row["text"], docs[doc], doc, "pairs"))
    return _dedupe(pairs)


def _dedupe(pairs: Iterable[Pair]) -> list[Pair]:
    seen, out = set(), []
    for p in pairs:
        key = (p.query.strip(), p.group)
        if p.query.strip() and p.passage.strip() and key not in seen:
            seen.add(key)
            out.append(p)
    return out


def data_hash(pairs: list[Pair]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p.query, p.group, p.passage, p.weight], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def split_held_out(pairs: list[Pair], share: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held out) by group: a held-out positive is never seen in training."""
    groups = sorted({p.group for p in pairs})
    random.Random(seed).shuffle(groups)
    n = int(round(len(groups) * share)) if share > 0 else 0
    held = set(groups[:n])
    return [p for p in pairs if p.group not in held], [p for p in pairs if p.group in held]


def batches(pairs: list[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches in which no two pairs share a positive or a question (such a pair waits for the next)."""
    order = pairs[:]
    rng.shuffle(order)
    out: list[list[Pair]] = []
    waiting = order
    while waiting:
        batch, groups, queries, later = [], set(), set(), []
        for p in waiting:
            if len(batch) < size and p.group not in groups and p.query not in queries:
                batch.append(p)
                groups.add(p.group)
                queries.add(p.query)
            else:
                later.append(p)
        out.append(batch)
        waiting = later
    return [b for b in out if len(b) > 1]


@dataclass
class TuneOptions:
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 3e-5
    scale: float = 20.0
    max_query_tokens: int = 64
    max_passage_tokens: int = 128
    freeze_layers: int = 0  # the lowest encoder layers also frozen (word embeddings always are)
    warmup: float = 0.1  # share of the steps with a rising learning rate
    held_out: float = 0.1  # share of the positives kept out to pick the best state
    eval_every: int = 0  # steps between held-out scores (0 = about 8 per run)
    max_minutes: float = 0.0  # 0 = no limit
    seed: int = 0
    bf16: bool = False  # bfloat16 autocast (faster only on CPUs with AMX / AVX-512 BF16)
    threads: int = 0  # torch intra-op threads (0 = every core)


@dataclass
class TuneResult:
    steps: int
    seconds: float
    pairs_per_second: float
    stopped: str  # done | time | interrupted
    best_step: int
    held_out_before: dict
    held_out_after: dict
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder:
    """The sentence-transformers folder's BERT with mean pooling, for training (torch)."""

    def __init__(self, folder: Path, threads: int = 0):
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = BertModel.from_pretrained(str(folder), attn_implementation="eager")
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.pad_id = self.model.config.pad_token_id

    def freeze(self, lower_layers: int) -> int:
        """Word, position and type embeddings frozen, and the lowest `lower_layers` layers; trainable parameter count."""
        for p in self.model.embeddings.parameters():
            p.requires_grad = False
        for layer in self.model.encoder.layer[:lower_layers]:
            for p in layer.parameters():
                p.requires_grad = False
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def tokens(self, texts: list[str], max_tokens: int):
        enc = self.tokenizer.encode_batch(texts)
        rows = [e.ids[: max_tokens - 1] + [e.ids[-1]] if len(e.ids) > max_tokens else e.ids for e in enc]
        width = max(len(r) for r in rows)
        ids = self.torch.full((len(rows), width), self.pad_id, dtype=self.torch.long)
        mask = self.torch.zeros((len(rows), width), dtype=self.torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = self.torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids, mask

    def embed(self, texts: list[str], max_tokens: int):
        ids, mask = self.tokens(texts, max_tokens)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return self.torch.nn.functional.normalize(pooled.float(), dim=-1)

    def encode(self, texts: list[str], max_tokens: int, batch: int = 64) -> np.ndarray:
        self.model.eval()
        out = []
        with self.torch.inference_mode():
            for i in range(0, len(texts), batch):
                out.append(self.embed(texts[i:i + batch], max_tokens).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size), np.float32)


def held_out_score(enc: Encoder, pairs: list[Pair], opts: TuneOptions) -> dict:
    """hit@1 / hit@5 / MRR@10 of the held-out queries against all held-out positives."""
    if not pairs:
        return {}
    groups = sorted({p.group for p in pairs})
    passage_of = {p.group: p.passage for p in pairs}
    P = enc.encode([PROMPTS["passage"] + passage_of[g] for g in groups], opts.max_passage_tokens)
    Q = enc.encode([PROMPTS["query"] + p.query for p in pairs], opts.max_query_tokens)
    where = {g: i for i, g in enumerate(groups)}
    scores = Q @ P.T
    gold = np.array([where[p.group] for p in pairs])
    rank = (scores > scores[np.arange(len(pairs)), gold][:, None]).sum(1)
    return {"queries": len(pairs), "passages": len(groups), "hit@1": round(float((rank < 1).mean()), 4),
            "hit@5": round(float((rank < 5).mean()), 4), "mrr@10": round(float(np.where(rank < 10, 1 / (rank + 1), 0).mean()), 4)}


def train(base: Path, pairs: list[Pair], held: list[Pair], opts: TuneOptions,
          progress: Callable[[dict], None] | None = None) -> tuple["Encoder", TuneResult]:
    """Fine-tune the model in `base` on `pairs`; returns the encoder holding the best state (by held-out MRR@10)."""
    import torch

    random.seed(opts.seed)
    np.random.seed(opts.seed)
    torch.manual_seed(opts.seed)
    enc = Encoder(base, opts.threads)
    enc.freeze(opts.freeze_layers)
    before = held_out_score(enc, held, opts)
    plan: list[list[Pair]] = []
    epoch = 0
    while len(plan) < max(1, math.ceil(opts.epochs * max(1, len(pairs)) / opts.batch_size)):
        more = batches(pairs, opts.batch_size, random.Random(opts.seed + epoch))
        if not more:
            break
        plan += more
        epoch += 1
    total = min(len(plan), max(1, math.ceil(opts.epochs * len(pairs) / opts.batch_size))) if plan else 0
    plan = plan[:total]
    params = [p for p in enc.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.01)
    warm = max(1, int(total * opts.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)) if s >= warm else (s + 1) / warm)
    every = opts.eval_every or max(1, total // 8)
    best_score = before.get("mrr@10", -1.0) if held else -1.0
    best_state = {k: v.detach().clone() for k, v in enc.model.state_dict().items()} if held else None
    best_step, history, stopped, seen = 0, [], "done", 0
    start = time.monotonic()
    deadline = start + opts.max_minutes * 60 if opts.max_minutes else None
    step = 0
    try:
        for step, batch in enumerate(plan, 1):
            enc.model.train()
            q_texts = [PROMPTS["query"] + p.query for p in batch]
            p_texts = [PROMPTS["passage"] + p.passage for p in batch]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
                q = enc.embed(q_texts, opts.max_query_tokens)
                p = enc.embed(p_texts, opts.max_passage_tokens)
            logits = opts.scale * q @ p.T
            labels = torch.arange(len(batch))
            weights = torch.tensor([x.weight for x in batch])
            loss = (torch.nn.functional.cross_entropy(logits, labels, reduction="none") * weights).sum() / weights.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            seen += len(batch)
            elapsed = time.monotonic() - start
            row = {"step": step, "steps": total, "loss": round(float(loss.detach()), 4), "seconds": round(elapsed, 1),
                   "eta_seconds": round(elapsed / step * (total - step), 1)}
            if held and (step % every == 0 or step == total):
                score = held_out_score(enc, held, opts)
                row["held_out"] = score
                if score["mrr@10"] > best_score:
                    best_score, best_step = score["mrr@10"], step
                    best_state = {k: v.detach().clone() for k, v in enc.model.state_dict().items()}
            history.append(row)
            if progress:
                progress(row)
            if deadline and time.monotonic() > deadline:
                stopped = "time"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    seconds = time.monotonic() - start
    if held and best_state is not None:
        enc.model.load_state_dict(best_state)
    else:
        best_step = step
    after = held_out_score(enc, held, opts)
    return enc, TuneResult(step, round(seconds, 1), round(seen / seconds, 2) if seconds else 0.0, stopped, best_step, before, after, history)


# --- the command: train, export, gate, promote ------------------------------------------------------

GATE_TARGET = "full.answer_hit@3"


def new_version(now: float | None = None) -> str:
    t = time.gmtime(now if now is not None else time.time())
    return time.strftime("tuned-%Y%m%d-%H%M%S", t) + f"-{random.randrange(16**4):04x}"


def gather_pairs(settings, kb: KB, feedback: bool = False, queries: Path | None = None, corpus: Path | None = None,
                 kb_pairs_on: bool = True) -> list[Pair]:
    """The training pairs: the KB's (unless kb_pairs_on is False), agents' feedback, an external set."""
    pairs = kb_pairs(kb, settings.chunking.size, settings.chunking.overlap) if kb_pairs_on else []
    if feedback:
        from assist.feedback import store_of

        store = store_of(settings)
        try:
            pairs += feedback_pairs(store, kb)
        finally:
            store.close()
    if queries is not None and corpus is not None:
        pairs += file_pairs(queries, corpus)
    return pairs


def gate(baseline: dict, candidate: dict, held_before: dict, held_after: dict, max_drop: float,
         target: str = GATE_TARGET) -> dict:
    """Promote only when no quality metric of the labelled-conversation eval (nor the held-out pairs'
    MRR@10) drops by more than `max_drop` and `target` improves."""
    from evals.report import compare_reports

    rows, failed = compare_reports(baseline, candidate, max_drop)
    flat = {name: (before, after) for name, before, after, _ in rows}
    regressions = [{"metric": n, "before": b, "after": a} for n, b, a, bad in rows if bad]
    held_drop = held_before and held_after and held_after["mrr@10"] < held_before["mrr@10"] - max_drop
    if held_drop:
        regressions.append({"metric": "held_out.mrr@10", "before": held_before["mrr@10"], "after": held_after["mrr@10"]})
    before, after = flat.get(target, (None, None))
    improved = before is not None and after > before
    return {"passed": not regressions and improved, "target": target, "target_before": before, "target_after": after,
            "improved": improved, "max_drop": max_drop, "regressions": regressions,
            "table": [{"metric": n, "before": b, "after": a, "regressed": bad} for n, b, a, bad in rows
                      if not n.startswith("full.per_intent") or abs(a - b) > 1e-9]}


def tune_model(settings, kb_dir: Path, pairs: list[Pair], opts: TuneOptions, *, eval_dataset: Path | None,
               max_drop: float = 0.02, target: str = GATE_TARGET, force: bool = False,
               say: Callable[[str], None] = print, progress: Callable[[dict], None] | None = None) -> dict:
    """Train on `pairs` from the model in use, write it as a new version, run the gate; the version
    becomes the one in use when the gate passes (or with `force`). Returns the report (also written as
    report.json + report.md in the version's folder)."""
    from assist.errors import AssistError
    from assist.index.embed import model_name
    from assist.index.model import DEFAULT_MODEL, MANIFEST, current_model_version, resolve_model, tuned_dir, update_tuned_manifest, use_model, write_tuned

    models_dir = Path(settings.models_dir)
    base = Path(resolve_model(DEFAULT_MODEL, models_dir))
    if not (base / MANIFEST).is_file():
        raise AssistError(f"no model to tune in {base}: run `assist model install` first")
    if len(pairs) < 2:
        raise AssistError(f"{len(pairs)} training pair(s): tuning needs at least 2 (a KB with FAQ questions, intent examples or headings)")
    train_pairs, held = split_held_out(pairs, opts.held_out, opts.seed)
    if len({p.group for p in train_pairs}) < 2:
        raise AssistError("the pairs point to fewer than 2 different items after the held-out split: add KB content or use --held-out 0")
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.source] = counts.get(p.source, 0) + 1
    say(f"{len(train_pairs)} training pairs, {len(held)} held out ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); "
        f"base {model_name(base)}")
    enc, result = train(base, train_pairs, held, opts, progress)
    say(f"trained {result.steps} steps in {result.seconds:.0f} s ({result.pairs_per_second:.2f} pairs/s, {result.stopped}); "
        f"held-out MRR@10 {result.held_out_before.get('mrr@10', float('nan')):.3f} -> {result.held_out_after.get('mrr@10', float('nan')):.3f}")
    version = new_version()
    base_info = json.loads((base / MANIFEST).read_text(encoding="utf-8"))
    manifest = {
        "model": f"{base_info['model'].split('+')[0]}+{version}", "kind": "tuned", "version": version,
        "base": {"model": base_info["model"], "version": current_model_version(models_dir) or "default"},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {"pairs": len(train_pairs), "held_out": len(held), "by_source": counts, "hash": data_hash(pairs)},
        "settings": asdict(opts), "training": result.to_dict(),
    }
    folder = write_tuned(models_dir, version, base, enc.model.save_pretrained, manifest, progress=say)
    del enc
    report = {"version": version, "folder": str(folder), "training": {k: v for k, v in result.to_dict().items() if k != "history"},
              "data": manifest["data"]}
    if eval_dataset is not None:
        from evals.conversations import eval_kb

        say("gate: the labelled conversations with the model in use, then with the new one")
        baseline = eval_kb(settings, eval_dataset, kb_dir, ["full"]).data
        candidate_settings = settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"model": str(folder)})})
        candidate = eval_kb(candidate_settings, eval_dataset, kb_dir, ["full"]).data
        report["gate"] = gate(baseline, candidate, result.held_out_before, result.held_out_after, max_drop, target)
    else:
        report["gate"] = {"passed": False, "skipped": True}
    promote = report["gate"]["passed"] or force
    report["promoted"] = promote
    report["forced"] = force and not report["gate"]["passed"]
    if promote:
        report["previous"], _ = use_model(models_dir, version)
    update_tuned_manifest(models_dir, version, gate={k: v for k, v in report["gate"].items() if k != "table"}, promoted=promote)
    (folder.parent / version / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (tuned_dir(models_dir) / version / "report.md").write_text(report_markdown(report), encoding="utf-8")
    return report


def report_markdown(report: dict) -> str:
    g, t = report["gate"], report["training"]
    lines = [f"# Model {report['version']}", "",
             f"- pairs: {report['data']['pairs']} training, {report['data']['held_out']} held out ({report['data']['by_source']})",
             f"- training: {t['steps']} steps, {t['seconds']} s, {t['pairs_per_second']} pairs/s, stopped: {t['stopped']}, best step {t['best_step']}",
             f"- held-out pairs: {t['held_out_before']} -> {t['held_out_after']}", ""]
    if g.get("skipped"):
        lines.append("Gate skipped (no eval dataset).")
    else:
        verdict = "passed" if g["passed"] else "failed"
        lines += [f"Gate {verdict}: {g['target']} {g['target_before']:.3f} -> {g['target_after']:.3f}; "
                  f"{len(g['regressions'])} metric(s) dropped by more than {g['max_drop']}.", "",
                  "| metric | before | after | change |", "|---|---|---|---|"]
        for row in g["table"]:
            flag = " **regression**" if row["regressed"] else ""
            lines.append(f"| {row['metric']} | {row['before']:.3f} | {row['after']:.3f} | {row['after'] - row['before']:+.3f}{flag} |")
    lines += ["", f"In use: {'yes' if report['promoted'] else 'no'}{' (forced past the gate)' if report.get('forced') else ''}."]
    return "\n".join(lines) + "\n"
