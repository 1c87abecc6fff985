"""The weekly review: what agents were shown and did with it, per day and per item, and the knowledge
gaps — clusters of requests the KB did not answer well — each with a suggested fix.

`build_review` reads the suggestion log and the feedback of a period (and of the period before it, for
week-over-week change) from the store; `apply_gap` turns a gap into similar questions of an article
and eval cases; `ignore_gap` remembers that a gap is not worth a fix.
"""

import base64
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from assist.errors import AssistError
from assist.feedback import FeedbackStore
from assist.kb import KB, OUT_OF_SCOPE, check_kb, normalize_question
from assist.suggestlog import SuggestionRecord, dequantize, quantize

LOW_CONFIDENCE = 0.4  # a request whose intent was this unsure is a gap candidate
MAX_GAP_TEXTS = 5000  # distinct candidate texts clustered (the most frequent)


@dataclass(frozen=True)
class ReviewOptions:
    cluster_similarity: float = 0.15  # average cosine of a gap's requests after centring (see `_gaps`)
    same_gap: float = 0.5  # a cluster this close (centred cosine of centroids) to an ignored gap is that gap
    # requests whose best KB section matched this well (median similarity, e5-small) are phrasings an article
    # misses: add them to it; below, the KB lacks the topic (the sample KB's missing topics sit at 0.88)
    add_similarity: float = 0.90
    min_gap_volume: int = 3  # clusters of fewer different requests are listed with the action "ignore"
    stale_days: int = 180
    stale_min_shown: int = 10
    top_gaps: int = 20
    examples: int = 5


# --- small statistics --------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion (None for n = 0)."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value that two acceptance rates differ (pooled z-test); None without data."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return round(math.erfc(z / math.sqrt(2)), 4)


def _rate(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def _percentile(values: list[float], p: float) -> float | None:
    return round(float(np.percentile(values, p)), 2) if values else None


# --- joining feedback to what was shown --------------------------------------------------------------


def join_feedback(suggestions: list[SuggestionRecord], feedback) -> dict[str, Counter]:
    """request_id -> Counter of feedback events on its items. An event names its request when the client
    sent `request_id`; otherwise it belongs to its session's latest suggestion (before it) that showed the item."""
    by_id = {s.request_id: s for s in suggestions}
    by_session: dict[str, list[SuggestionRecord]] = defaultdict(list)
    for s in suggestions:
        if s.session_id:
            by_session[s.session_id].append(s)
    out: dict[str, Counter] = defaultdict(Counter)
    for f in feedback:
        target = by_id.get(f.request_id) if f.request_id else None
        if target is None and f.session_id:
            shown = [s for s in by_session.get(f.session_id, ()) if s.created_at <= f.created_at
                     and f.suggestion_id in (s.answers if f.kind == "article" else s.templates)]
            target = shown[-1] if shown else None
        if target is not None:
            out[target.request_id][f.event] += 1
    return out


# --- KPIs --------------------------------------------------------------------------------------------


def _kpis(suggestions: list[SuggestionRecord], events: dict[str, Counter]) -> dict:
    showed = [s for s in suggestions if s.answers or s.templates]
    used = sum(1 for s in showed if events.get(s.request_id, {}).get("used"))
    edited = sum(1 for s in showed if events.get(s.request_id, {}).get("edited"))
    dismissed = sum(1 for s in showed if events.get(s.request_id, {}).get("dismissed"))
    latency = [s.latency_ms for s in suggestions]
    return {
        "suggestions": len(suggestions),
        "acceptance_rate": _rate(used, len(showed)),
        "edit_rate": _rate(edited, len(showed)),
        "dismiss_rate": _rate(dismissed, len(showed)),
        "abstain_rate": _rate(sum(s.abstained for s in suggestions), len(suggestions)),
        "escalation_rate": _rate(sum(s.escalate for s in suggestions), len(suggestions)),
        "latency_p50_ms": _percentile(latency, 50),
        "latency_p95_ms": _percentile(latency, 95),
    }


def _change(now: dict, before: dict) -> dict:
    return {k: (None if now[k] is None or before.get(k) is None else round(now[k] - before[k], 4)) for k in now}


# --- per item ----------------------------------------------------------------------------------------


def _items(suggestions: list[SuggestionRecord], feedback, kb: KB | None, opts: ReviewOptions, today: date) -> dict:
    shown: Counter = Counter()
    for s in suggestions:
        shown.update(("article", a) for a in s.answers)
        shown.update(("template", t) for t in s.templates)
    acted: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for f in feedback:
        acted[(f.kind, f.suggestion_id)][f.event] += 1
    known: dict[tuple[str, str], dict] = {}
    if kb is not None:
        for a in kb.published:
            known[("article", a.id)] = {"title": a.title, "updated": a.updated, "path": a.path}
        for t in kb.templates:
            known[("template", t.id)] = {"title": t.title, "updated": "", "path": t.path}
    rows = []
    for key in set(shown) | set(acted):
        kind, item = key
        n, c = shown[key], acted[key]
        rows.append({"kind": kind, "id": item, "title": known.get(key, {}).get("title", ""), "shown": n, "used": c["used"],
                     "edited": c["edited"], "dismissed": c["dismissed"], "acceptance_rate": _rate(c["used"], n),
                     "acceptance_ci95": wilson(min(c["used"], n), n)})
    rows.sort(key=lambda r: (-r["shown"], r["kind"], r["id"]))
    never = [{"kind": k, "id": i, "title": v["title"]} for (k, i), v in sorted(known.items()) if shown[(k, i)] == 0]
    stale = []
    for (kind, item), v in sorted(known.items()):
        try:
            age = (today - date.fromisoformat(v["updated"])).days
        except ValueError:
            continue
        c = acted[(kind, item)]
        if age > opts.stale_days and (shown[(kind, item)] >= opts.stale_min_shown or c["dismissed"] >= 3):
            stale.append({"kind": kind, "id": item, "title": v["title"], "updated": v["updated"], "age_days": age,
                          "shown": shown[(kind, item)], "dismissed": c["dismissed"]})
    return {"items": rows, "never_suggested": never, "stale": stale}


# --- knowledge gaps ----------------------------------------------------------------------------------


def _candidates(suggestions: list[SuggestionRecord], events: dict[str, Counter]) -> list[tuple[SuggestionRecord, str]]:
    """(suggestion, why) for the requests the KB did not serve well."""
    out = []
    for s in suggestions:
        if not s.query.strip():
            continue
        if s.abstained:
            why = "abstained"
        elif s.intent == OUT_OF_SCOPE:
            why = "out_of_scope"
        elif events.get(s.request_id, {}).get("dismissed") and not events.get(s.request_id, {}).get("used"):
            why = "dismissed"
        elif s.confidence < LOW_CONFIDENCE:
            why = "low_confidence"
        else:
            continue
        out.append((s, why))
    return out


def _last_turn(query: str) -> str:
    """The request's own words: a folded query puts earlier turns first (one per line)."""
    lines = [line for line in query.splitlines() if line.strip()]
    return lines[-1] if lines else query


def _cluster(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage clusters of (centred, unit) vectors: a cluster's members are, on average, at least
    `threshold` apart in cosine from each other."""
    if len(vectors) == 1:
        return [[0]]
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=1 - threshold).fit_predict(vectors)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[int(label)].append(i)
    return list(groups.values())


def gap_key(texts: list[str]) -> str:
    return "gap-" + hashlib.sha1(normalize_question(texts[0]).encode()).hexdigest()[:8]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def _texts(candidates, embedder) -> tuple[list[str], dict, np.ndarray]:
    """Distinct requests (normalised last turn), the most frequent first: their rows and mean vectors."""
    rows: dict[str, list] = defaultdict(list)
    shown_as: dict[str, str] = {}
    for s, reason in candidates:
        words = _last_turn(s.query)
        key = normalize_question(words) or words
        rows[key].append((s, reason))
        shown_as.setdefault(key, words)
    keys = sorted(rows, key=lambda k: (-len(rows[k]), k))[:MAX_GAP_TEXTS]
    missing, stored = [], []
    for i, k in enumerate(keys):
        blobs = [s.vector for s, _ in rows[k] if s.vector]
        if blobs:
            stored.append(np.mean([dequantize(b) for b in blobs], axis=0))
        else:
            stored.append(None)
            missing.append(i)
    if missing:  # rows logged without a vector: encode their words
        if embedder is None:
            keep = [i for i in range(len(keys)) if stored[i] is not None]
            keys, stored = [keys[i] for i in keep], [stored[i] for i in keep]
        else:
            encoded = embedder.encode_queries([shown_as[keys[i]] for i in missing])
            for i, v in zip(missing, encoded):
                stored[i] = np.asarray(v, dtype=np.float32)
    vectors = _unit(np.stack(stored).astype(np.float32)) if keys else np.zeros((0, 0), dtype=np.float32)
    return keys, {"rows": rows, "shown_as": shown_as}, vectors


def _gaps(candidates, previous, mean: np.ndarray | None, index, embedder, decisions: list[dict], opts: ReviewOptions) -> list[dict]:
    """Clusters of the requests the KB served badly, each with volume, trend, examples, the nearest article
    and a suggested action; ranked by distinct requests, then volume.

    The query vectors are centred on the mean of all the period's requests before clustering: e5-style
    encoders put every customer question in one narrow cone (cosines 0.8-0.95 for unrelated ones), and
    centring removes that shared direction, so clusters follow topics instead of growing into one blob."""
    keys, info, raw = _texts(candidates, embedder)
    if not keys:
        return []
    rows, shown_as = info["rows"], info["shown_as"]
    mu = mean if mean is not None else raw.mean(axis=0)
    centred = _unit(raw - mu)
    clusters = _cluster(centred, opts.cluster_similarity)
    prev_keys, prev_info, prev_raw = _texts(previous, embedder) if previous else ([], {}, np.zeros((0, raw.shape[1]), dtype=np.float32))
    prev_centred = _unit(prev_raw - mu) if len(prev_keys) else prev_raw
    prev_weights = np.array([len(prev_info["rows"][k]) for k in prev_keys]) if prev_keys else np.zeros(0)
    ignored = [d for d in decisions if d["action"] == "ignore" and d.get("centroid")]
    ignored_c = _unit(np.stack([dequantize(base64.b64decode(d["centroid"])) for d in ignored]) - mu) if ignored else None
    out = []
    for members in clusters:
        members.sort(key=lambda i: (-len(rows[keys[i]]), keys[i]))
        records = [r for i in members for r in rows[keys[i]]]
        centroid_c = _unit(centred[members].mean(axis=0))
        if ignored_c is not None and float(np.max(ignored_c @ centroid_c)) >= opts.same_gap:
            continue
        typical = sorted(members, key=lambda i: -float(centred[i] @ centroid_c))  # the most typical request first
        examples = [shown_as[keys[i]] for i in typical]
        centroid = _unit(raw[members].mean(axis=0))
        nearest = _nearest_article(index, examples[0], centroid)
        sims = [s.top_similarity for s, _ in records if s.top_similarity is not None]
        covered = float(np.median(sims)) if sims else 0.0  # how well the KB's best section matched these requests
        last_week = 0
        if len(prev_centred):
            near = (prev_centred @ centroid_c) >= opts.same_gap
            last_week = int(prev_weights[near].sum())
        volume = len(records)
        if nearest and covered >= opts.add_similarity:
            action = {"action": "add_similar", "article_id": nearest["id"],
                      "text": f"add as similar questions to {nearest['id']} ({nearest['title']})"}
        elif len(members) >= opts.min_gap_volume:
            action = {"action": "new_article", "article_id": None, "text": "write a new article"}
        else:
            action = {"action": "ignore", "article_id": None, "text": "ignore (too few different requests)"}
        out.append({
            "id": gap_key(examples), "volume": volume, "distinct": len(members),
            "sessions": len({s.session_id or s.request_id for s, _ in records}),
            "previous_volume": last_week, "trend": volume - last_week, "reasons": dict(Counter(r for _, r in records)),
            "examples": examples[: opts.examples], "queries": examples[:50], "nearest": nearest,
            "median_similarity": round(covered, 4), "suggested": action,
            "centroid": base64.b64encode(quantize(centroid)).decode(),
        })
    out.sort(key=lambda g: (-g["distinct"], -g["volume"], g["id"]))
    return out[: opts.top_gaps]


def _nearest_article(index, text: str, centroid: np.ndarray) -> dict | None:
    if index is None:
        return None
    hits = index.search(text, k=5, mode="dense", kind="article", query_vector=centroid)
    if not hits:
        return None
    h = hits[0]
    return {"id": h.chunk.article_id, "title": h.chunk.title, "similarity": round(float(h.dense_score), 4)}


# --- experiments -------------------------------------------------------------------------------------


def _arms(suggestions: list[SuggestionRecord], events: dict[str, Counter]) -> list[dict]:
    by_arm: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in suggestions:
        if s.arm and (s.answers or s.templates):
            by_arm[s.arm][1] += 1
            by_arm[s.arm][0] += bool(events.get(s.request_id, {}).get("used"))
    arms = sorted(by_arm)
    out = [{"arm": a, "suggestions": n, "used": k, "acceptance_rate": _rate(k, n), "acceptance_ci95": wilson(k, n)}
           for a in arms for k, n in [by_arm[a]]]
    if len(arms) >= 2:
        base = by_arm[arms[0]]
        for row in out[1:]:
            p = two_proportion_test(row["used"], row["suggestions"], *base)
            row["vs"] = arms[0]
            row["p_value"] = p
            row["verdict"] = (f"significant at the 5% level (p = {p})" if p is not None and p < 0.05
                              else f"not significant (p = {p}): the arms may not differ")
    return out


# --- the report --------------------------------------------------------------------------------------


def build_review(store: FeedbackStore, since: datetime, until: datetime, kb: KB | None = None, index=None, embedder=None,
                 opts: ReviewOptions = ReviewOptions()) -> dict:
    """The review of [since, until) as plain JSON. Gaps cluster the logged query vectors; `embedder`
    encodes the words of rows logged without one (else they are left out)."""
    span = until - since
    prev_since = since - span
    iso = lambda t: t.isoformat(timespec="milliseconds")  # noqa: E731
    now_s = store.suggestions(iso(since), iso(until))
    prev_s = store.suggestions(iso(prev_since), iso(since))
    feedback = store.feedback_between(iso(prev_since), iso(until))
    now_f = [f for f in feedback if f.created_at >= iso(since)]
    events = join_feedback(prev_s + now_s, feedback)
    days = defaultdict(list)
    for s in now_s:
        days[s.created_at[:10]].append(s)
    totals, previous = _kpis(now_s, events), _kpis(prev_s, events)
    report = {
        "since": iso(since), "until": iso(until),
        "totals": totals, "previous": previous, "change": _change(totals, previous),
        "days": [{"day": d, **_kpis(rows, events)} for d, rows in sorted(days.items())],
        **_items(now_s, now_f, kb, opts, until.date()),
        "gaps": [], "experiments": _arms(now_s, events),
    }
    blobs = [s.vector for s in now_s if s.vector]
    mean = np.mean([dequantize(b) for b in blobs[:: max(1, len(blobs) // 5000)]], axis=0) if blobs else None
    report["gaps"] = _gaps(_candidates(now_s, events), _candidates(prev_s, events), mean, index, embedder, store.decisions(), opts)
    return report


# --- acting on a gap ---------------------------------------------------------------------------------


def find_gap(report: dict, gap_id: str) -> dict:
    gap = next((g for g in report.get("gaps", ()) if g["id"] == gap_id), None)
    if gap is None:
        known = ", ".join(g["id"] for g in report.get("gaps", ())[:10]) or "none"
        raise AssistError(f"no gap {gap_id!r} in the report (its gaps: {known})")
    return gap


def ignore_gap(store: FeedbackStore, gap: dict) -> None:
    """Remember that this gap needs no fix: later reviews leave out clusters close to it."""
    store.add_decision(gap["id"], "ignore", gap["queries"], centroid=gap.get("centroid"))


def apply_gap(store: FeedbackStore, gap: dict, kb_dir: Path, article_id: str, eval_file: Path | None) -> dict:
    """Add the gap's requests as similar questions of an article (or FAQ entry) in the KB files, append
    them as eval cases tagged `review`, and remember the decision. Questions the KB already asks are
    skipped; the KB must still pass `kb check` afterwards, else nothing is written."""
    kb, problems = check_kb(kb_dir)
    if kb is None:
        raise AssistError(f"cannot read the KB at {kb_dir}")
    article = next((a for a in kb.articles if a.id == article_id), None)
    if article is None:
        raise AssistError(f"no article or FAQ entry {article_id!r} in {kb_dir}")
    asked = {normalize_question(q) for a in kb.articles for q in a.questions}
    new = []
    for q in gap["queries"]:
        key = normalize_question(q)
        if key and key not in asked:
            asked.add(key)
            new.append(q.strip())
    path = Path(kb_dir) / article.path
    original = path.read_text(encoding="utf-8")
    if new:
        path.write_text(_with_questions(original, new, article.source == "faq", bool(article.questions), article.title), encoding="utf-8")
        _, after = check_kb(kb_dir)
        fresh = [p for p in after if str(p) not in {str(x) for x in problems}]
        if fresh:
            path.write_text(original, encoding="utf-8")
            raise AssistError("the KB would not pass kb check, nothing written:\n" + "\n".join(str(p) for p in fresh))
    cases = 0
    if eval_file is not None and new:
        with open(eval_file, "a", encoding="utf-8") as f:
            for n, q in enumerate(new, 1):
                case = {"id": f"r-{gap['id'][4:]}-{n:02d}", "conversation": [{"role": "customer", "text": q}], "customer": {},
                        "intent": article.intents[0] if article.intents else OUT_OF_SCOPE, "relevant": [article.id],
                        "templates": [], "escalate": False, "tags": ["review"]}
                f.write(json.dumps(case, ensure_ascii=False) + "\n")
                cases += 1
    store.add_decision(gap["id"], "added", gap["queries"], article.id, centroid=gap.get("centroid"))
    return {"article": article.id, "path": str(path), "questions_added": new, "eval_cases": cases}


def _with_questions(text: str, questions: list[str], faq: bool, has_questions: bool, title: str) -> str:
    """The file with `questions` appended to its FAQ questions, keeping every other line as it was."""
    lines = text.splitlines()
    quoted = [f"  - {json.dumps(q, ensure_ascii=False)}" for q in questions]
    key = "similar" if faq else "questions"
    start = next((i for i, line in enumerate(lines) if re.match(rf"^{key}:\s*$", line)), None)
    if start is None and any(re.match(rf"^{key}:", line) for line in lines):
        raise AssistError(f"'{key}:' is written on one line; write it as a block list (one '  - question' per line) to add to it")
    if start is not None:  # a block list: add after its last item
        end = start + 1
        while end < len(lines) and re.match(r"^\s+-\s", lines[end]):
            end += 1
        lines[end:end] = quoted
    elif faq:
        lines += [f"{key}:", *quoted]
    else:  # an article without questions: its title becomes the standard question, then the new ones
        close = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        head = [] if has_questions else [f"  - {json.dumps(title, ensure_ascii=False)}"]
        lines[close:close] = [f"{key}:", *head, *quoted]
    return "\n".join(lines) + "\n"


def review_period(settings, store: FeedbackStore, since: str = "7d", until: str | None = None, index=None) -> dict:
    """The review of a period given as text (7d, a date), with an index (default: CURRENT, opened here) for
    nearest articles, and the help centre's numbers: what `assist review` and GET /v1/admin/review return."""
    from datetime import timezone

    from assist.helpreport import help_report, parse_since
    from assist.index.store import open_index

    start = parse_since(since)
    end = parse_since(until) if until else datetime.now(timezone.utc)
    if end <= start:
        raise AssistError(f"the period is empty: --since {since} is not before --until {until}")
    if index is None:
        try:
            index = open_index(settings)
        except AssistError:  # no index yet: the numbers still come, gaps without a nearest article
            index = None
    report = build_review(store, start, end, index.kb if index else None, index, index.embedder if index else None)
    iso = lambda t: t.isoformat(timespec="milliseconds")  # noqa: E731
    report["help"] = help_report(store.help_events(iso(start), iso(end)), start, end)
    return report
