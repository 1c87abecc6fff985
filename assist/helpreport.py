"""How well the help centre answers customers: deflection by day, unanswered searches, votes per article.

A help session is one browser tab's events (the page's random session id). It counts when it searched
or opened an article, and is *deflected* when it opened an article and then either voted "helpful" or
never followed "contact us": the customer found the answer without an agent.
"""

import html
import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from assist.errors import AssistError
from assist.feedback import HelpEvent
from assist.files import atomic_write_text
from assist.kb import normalize_question


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `24h`, `30m` before now, or an ISO date / time (UTC when it names no zone)."""
    now = now or datetime.now(timezone.utc)
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: n})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AssistError(f"--since {text!r}: give a span like 7d, 24h or 30m, or a date like 2026-11-24") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _sessions(events: list[HelpEvent]) -> dict[str, dict]:
    sessions: dict[str, dict] = {}
    for e in events:
        if not e.session_id:
            continue
        s = sessions.setdefault(e.session_id, {"start": e.created_at, "searched": False, "viewed": False,
                                                "helpful": False, "contact": False})
        s["searched"] |= e.event == "search"
        s["viewed"] |= e.event == "view"
        s["helpful"] |= e.event == "helpful"
        s["contact"] |= e.event == "contact"
    return {sid: s for sid, s in sessions.items() if s["searched"] or s["viewed"]}


def is_deflected(session: dict) -> bool:
    return session["viewed"] and (session["helpful"] or not session["contact"])


def deflection_rate(events: list[HelpEvent]) -> float | None:
    """Share of the help sessions among `events` that were deflected (None: no session)."""
    sessions = _sessions(events)
    return sum(map(is_deflected, sessions.values())) / len(sessions) if sessions else None


def _final_searches(events: list[HelpEvent]) -> list[HelpEvent]:
    """Searches without the prefixes typed on the way (search as you type sends 退, 退款, 退款多久…):
    a search is dropped when the same session's next search starts with it."""
    by_session: dict[str | None, list[HelpEvent]] = defaultdict(list)
    for e in events:
        if e.event == "search" and e.query:
            by_session[e.session_id].append(e)
    out = []
    for sid, searches in by_session.items():
        for n, e in enumerate(searches):
            after = searches[n + 1] if n + 1 < len(searches) else None
            if sid is not None and after is not None and after.query.startswith(e.query):
                continue
            out.append(e)
    return out


def help_report(events: list[HelpEvent], since: datetime, until: datetime, top: int = 20) -> dict:
    """The report of the events between `since` and `until` (plain JSON)."""
    sessions = _sessions(events)
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in sessions.values():
        day = days[s["start"][:10]]
        day[0] += 1
        day[1] += is_deflected(s)
    searches = _final_searches(events)
    unanswered: dict[str, dict] = {}
    for e in searches:
        if not e.abstained:
            continue
        key = normalize_question(e.query) or e.query
        row = unanswered.setdefault(key, {"sessions": set(), "count": 0, "texts": Counter(), "last": ""})
        row["count"] += 1
        row["sessions"].add(e.session_id or f"anonymous-{row['count']}")
        row["texts"][e.query] += 1
        row["last"] = max(row["last"], e.created_at)
    articles: dict[str, Counter] = defaultdict(Counter)
    for e in events:
        if e.article_id and e.event in ("view", "helpful", "not_helpful", "contact"):
            articles[e.article_id][e.event] += 1
    counts = Counter(e.event for e in events)
    deflected = sum(map(is_deflected, sessions.values()))
    return {
        "since": since.isoformat(timespec="seconds"),
        "until": until.isoformat(timespec="seconds"),
        "definition": "a help session (one browser tab) that searched or opened an article; deflected when it opened an "
                      "article and voted helpful, or never followed 'contact us'",
        "totals": {
            "sessions": len(sessions), "deflected": deflected,
            "deflection_rate": round(deflected / len(sessions), 4) if sessions else None,
            "searches": len(searches), "unanswered_searches": sum(1 for e in searches if e.abstained),
            "views": counts["view"], "helpful": counts["helpful"], "not_helpful": counts["not_helpful"], "contact": counts["contact"],
        },
        "days": [{"day": d, "sessions": n, "deflected": k, "deflection_rate": round(k / n, 4)} for d, (n, k) in sorted(days.items())],
        "unanswered": sorted(
            ({"query": r["texts"].most_common(1)[0][0], "sessions": len(r["sessions"]), "searches": r["count"], "last_seen": r["last"]}
             for r in unanswered.values()),
            key=lambda r: (-r["sessions"], -r["searches"], r["query"]),
        )[:top],
        "articles": sorted(
            ({"id": aid, "views": c["view"], "helpful": c["helpful"], "not_helpful": c["not_helpful"], "contact": c["contact"]}
             for aid, c in articles.items()),
            key=lambda r: (-r["views"], r["id"]),
        ),
    }


def _bars(days: list[dict]) -> str:
    """Daily deflection rate as an inline SVG bar chart (no script, no external file)."""
    if not days:
        return "<p>No help sessions in this period.</p>"
    w, h, gap = 36, 120, 8
    bars = []
    for n, d in enumerate(days):
        x, bar = n * (w + gap), round(d["deflection_rate"] * h)
        bars.append(f'<rect x="{x}" y="{h - bar + 16}" width="{w}" height="{bar}" fill="#1a6fb5"><title>{d["day"]}: '
                    f'{d["deflection_rate"]:.0%} of {d["sessions"]}</title></rect>'
                    f'<text x="{x + w / 2}" y="{h - bar + 12}" text-anchor="middle" font-size="11">{d["deflection_rate"]:.0%}</text>'
                    f'<text x="{x + w / 2}" y="{h + 30}" text-anchor="middle" font-size="10">{d["day"][5:]}</text>')
    width = len(days) * (w + gap)
    return (f'<svg role="img" aria-label="daily deflection rate" width="{width}" height="{h + 36}" '
            f'viewBox="0 0 {width} {h + 36}">{"".join(bars)}</svg>')


def render_html(report: dict) -> str:
    """A self-contained page of the report."""
    esc = html.escape
    t = report["totals"]
    rate = "–" if t["deflection_rate"] is None else f"{t['deflection_rate']:.1%}"
    gaps = "".join(f"<tr><td>{esc(r['query'])}</td><td>{r['sessions']}</td><td>{r['searches']}</td><td>{esc(r['last_seen'][:16])}</td></tr>"
                   for r in report["unanswered"]) or '<tr><td colspan="4">none</td></tr>'
    items = "".join(f"<tr><td>{esc(r['id'])}</td><td>{r['views']}</td><td>{r['helpful']}</td><td>{r['not_helpful']}</td><td>{r['contact']}</td></tr>"
                    for r in report["articles"]) or '<tr><td colspan="5">none</td></tr>'
    return f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>Help centre report</title>
<style>body{{font:14px/1.5 system-ui,"WenQuanYi Micro Hei",sans-serif;margin:2em;color:#1a1a1a}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.kpi{{display:inline-block;margin:0 2em 1em 0}}.kpi b{{font-size:24px;display:block}}</style>
<h1>Help centre: {esc(report['since'][:10])} – {esc(report['until'][:10])}</h1>
<p>{esc(report['definition'])}.</p>
<div class="kpi"><b>{rate}</b>deflection rate</div><div class="kpi"><b>{t['sessions']}</b>sessions</div>
<div class="kpi"><b>{t['searches']}</b>searches</div><div class="kpi"><b>{t['unanswered_searches']}</b>unanswered</div>
<div class="kpi"><b>{t['helpful']} / {t['not_helpful']}</b>helpful / not</div><div class="kpi"><b>{t['contact']}</b>contact us</div>
<h2>Deflection by day</h2>{_bars(report['days'])}
<h2>Top unanswered searches</h2><table><tr><th>search</th><th>sessions</th><th>searches</th><th>last seen</th></tr>{gaps}</table>
<h2>Articles</h2><table><tr><th>id</th><th>views</th><th>helpful</th><th>not helpful</th><th>contact us after</th></tr>{items}</table>
</html>"""


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, ensure_ascii=False, indent=2))
    atomic_write_text(out / "report.html", render_html(report))
