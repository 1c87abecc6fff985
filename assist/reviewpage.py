"""report.html of `assist review`: one self-contained page (inline CSS and SVG, no script) a team lead
reads at a glance: KPIs with week-over-week change, a daily chart, the knowledge gaps with their fix,
per-item numbers, never-suggested and stale items, experiments and the help centre."""

import html

esc = html.escape

KPI_LABELS = [
    ("suggestions", "suggestions", "{:,}", True),
    ("acceptance_rate", "acceptance (used / shown)", "{:.1%}", True),
    ("edit_rate", "edited", "{:.1%}", None),
    ("dismiss_rate", "dismissed", "{:.1%}", False),
    ("abstain_rate", "no good answer", "{:.1%}", False),
    ("escalation_rate", "escalations", "{:.1%}", False),
    ("latency_p50_ms", "latency p50 (ms)", "{:.1f}", False),
    ("latency_p95_ms", "latency p95 (ms)", "{:.1f}", False),
]


def _fmt(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _kpis(report: dict) -> str:
    cards = []
    for key, label, pattern, up_is_good in KPI_LABELS:
        now, change = report["totals"].get(key), report["change"].get(key)
        delta = ""
        if change is not None and change != 0:
            good = None if up_is_good is None else (change > 0) == up_is_good
            cls = "" if good is None else ("good" if good else "bad")
            shown = f"{change:+,}" if key == "suggestions" else (f"{change:+.1%}" if "rate" in key else f"{change:+.1f}")
            delta = f'<span class="delta {cls}">{shown} vs previous</span>'
        cards.append(f'<div class="kpi"><b>{_fmt(now, pattern)}</b>{esc(label)}{delta}</div>')
    return "".join(cards)


def _daily_chart(days: list[dict]) -> str:
    if not days:
        return "<p>No suggestions in this period.</p>"
    w, h, gap = 44, 140, 10
    top = max(d["suggestions"] for d in days) or 1
    parts = []
    points = []
    for n, d in enumerate(days):
        x = n * (w + gap)
        bar = round(d["suggestions"] / top * h)
        parts.append(f'<rect x="{x}" y="{h - bar + 20}" width="{w}" height="{bar}" fill="#c9dcf0"><title>{d["day"]}: '
                     f'{d["suggestions"]} suggestions</title></rect>'
                     f'<text x="{x + w / 2}" y="{h + 34}" text-anchor="middle" font-size="10">{d["day"][5:]}</text>')
        if d["acceptance_rate"] is not None:
            points.append((x + w / 2, h + 20 - d["acceptance_rate"] * h, d["acceptance_rate"]))
    if points:
        parts.append('<polyline fill="none" stroke="#0b6e4f" stroke-width="2" points="'
                     + " ".join(f"{x:.0f},{y:.0f}" for x, y, _ in points) + '"/>')
        parts += [f'<circle cx="{x:.0f}" cy="{y:.0f}" r="3" fill="#0b6e4f"><title>acceptance {v:.0%}</title></circle>'
                  f'<text x="{x:.0f}" y="{y - 6:.0f}" text-anchor="middle" font-size="10" fill="#0b6e4f">{v:.0%}</text>'
                  for x, y, v in points]
    width = len(days) * (w + gap)
    return (f'<svg role="img" aria-label="suggestions per day (bars) and acceptance rate (line)" width="{width}" '
            f'height="{h + 40}" viewBox="0 0 {width} {h + 40}">{"".join(parts)}</svg>'
            '<p class="legend"><span class="sw bar"></span> suggestions per day <span class="sw line"></span> acceptance rate</p>')


def _gaps(gaps: list[dict], report_path: str) -> str:
    if not gaps:
        return "<p>No knowledge gaps: every request was answered well enough.</p>"
    rows = []
    for n, g in enumerate(gaps, 1):
        examples = "".join(f"<li>{esc(e)}</li>" for e in g["examples"])
        near = g.get("nearest")
        near_text = f'{esc(near["id"])} ({esc(near["title"])})' if near else "–"
        s = g["suggested"]
        if s["action"] == "add_similar":
            command = f"assist review apply {g['id']} --add-to {s['article_id']} --report {report_path}"
        else:
            command = f"assist review apply {g['id']} --ignore --report {report_path}"
        trend = f"{g['trend']:+d}" if g.get("previous_volume") else "new"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(g["reasons"].items(), key=lambda kv: -kv[1]))
        rows.append(f"""<tr><td>{n}</td><td><code>{esc(g['id'])}</code></td><td>{g['distinct']}</td><td>{g['volume']}</td><td>{esc(trend)}</td>
<td><ul>{examples}</ul><small>{esc(reasons)}</small></td><td>{near_text}<br><small>requests matched it at {g['median_similarity']:.2f}</small></td>
<td><b>{esc(s['text'])}</b><br><code class="cmd">{esc(command)}</code></td></tr>""")
    return ('<table><tr><th>#</th><th>gap</th><th>different requests</th><th>volume</th><th>vs previous</th><th>examples (redacted)</th>'
            '<th>nearest article</th><th>suggested fix</th></tr>' + "".join(rows) + "</table>")


def _ci(ci) -> str:
    return "–" if not ci else f"{ci[0]:.0%}–{ci[1]:.0%}"


def _items(items: list[dict], limit: int = 40) -> str:
    if not items:
        return "<p>Nothing was shown.</p>"
    rows = "".join(
        f"<tr><td>{esc(r['kind'])}</td><td>{esc(r['id'])}</td><td>{esc(r['title'])}</td><td>{r['shown']}</td><td>{r['used']}</td>"
        f"<td>{r['edited']}</td><td>{r['dismissed']}</td><td>{_fmt(r['acceptance_rate'], '{:.0%}')}</td><td>{_ci(r['acceptance_ci95'])}</td></tr>"
        for r in items[:limit])
    more = f"<p>{len(items) - limit} more in report.json.</p>" if len(items) > limit else ""
    return ("<table><tr><th>kind</th><th>id</th><th>title</th><th>shown</th><th>used</th><th>edited</th><th>dismissed</th>"
            "<th>acceptance</th><th>95% interval</th></tr>" + rows + "</table>" + more)


def _simple_list(rows: list[dict], fields: list[str], empty: str) -> str:
    if not rows:
        return f"<p>{esc(empty)}</p>"
    head = "".join(f"<th>{esc(f)}</th>" for f in fields)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(r.get(f, '')))}</td>" for f in fields) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _experiments(arms: list[dict]) -> str:
    if not arms:
        return "<p>No experiment ran in this period.</p>"
    rows = "".join(f"<tr><td>{esc(a['arm'])}</td><td>{a['suggestions']}</td><td>{a['used']}</td><td>{_fmt(a['acceptance_rate'], '{:.1%}')}</td>"
                   f"<td>{_ci(a['acceptance_ci95'])}</td><td>{esc(a.get('verdict', 'baseline'))}</td></tr>" for a in arms)
    return "<table><tr><th>arm</th><th>suggestions</th><th>used</th><th>acceptance</th><th>95% interval</th><th>vs the first arm</th></tr>" + rows + "</table>"


def _help(help_report: dict | None) -> str:
    if not help_report or not help_report["totals"]["sessions"]:
        return "<p>No help-centre sessions in this period.</p>"
    t = help_report["totals"]
    rate = _fmt(t["deflection_rate"], "{:.1%}")
    unanswered = "".join(f"<li>{esc(r['query'])} ({r['sessions']} sessions)</li>" for r in help_report["unanswered"][:10])
    return (f'<div class="kpi"><b>{rate}</b>deflected</div><div class="kpi"><b>{t["sessions"]}</b>help sessions</div>'
            f'<div class="kpi"><b>{t["unanswered_searches"]}</b>unanswered searches</div>'
            f"<h3>Top unanswered searches</h3><ul>{unanswered or '<li>none</li>'}</ul>")


def render(report: dict, report_path: str = "review/report.json") -> str:
    return f"""<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Weekly review {esc(report['since'][:10])} – {esc(report['until'][:10])}</title>
<style>
body{{font:14px/1.5 system-ui,"WenQuanYi Micro Hei",sans-serif;margin:24px;color:#1a1a1a;max-width:1200px}}
h1{{font-size:22px}} h2{{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}}
table{{border-collapse:collapse;width:100%;margin:8px 0}} td,th{{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}}
th{{background:#f3f5f7}} ul{{margin:0;padding-left:18px}} code.cmd{{font-size:12px;background:#f3f5f7;padding:2px 4px;display:inline-block;margin-top:4px}}
.kpi{{display:inline-block;min-width:150px;margin:0 12px 12px 0;padding:10px 12px;border:1px solid #d0d7de;border-radius:6px}}
.kpi b{{display:block;font-size:22px}} .delta{{display:block;font-size:12px;color:#555}} .delta.good{{color:#0b6e4f}} .delta.bad{{color:#b42318}}
.legend{{font-size:12px;color:#444}} .sw{{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px 0 12px}}
.sw.bar{{background:#c9dcf0}} .sw.line{{background:#0b6e4f;height:3px}} small{{color:#555}}
</style>
<h1>Weekly review: {esc(report['since'][:16])} – {esc(report['until'][:16])} UTC</h1>
<p>Compared with the period before it of the same length. Texts are redacted. Apply a fix with the command shown, then
run <code>assist kb check</code>, <code>assist index build</code> and the eval gate.</p>
{_kpis(report)}
<h2>Per day</h2>{_daily_chart(report['days'])}
<h2>Knowledge gaps</h2>
<p>Requests the KB did not serve well (no good answer, out of scope, the suggestion dismissed, or an unsure intent), grouped by
meaning and ranked by how many different requests make them up.</p>
{_gaps(report['gaps'], report_path)}
<h2>Articles and templates</h2>{_items(report['items'])}
<h2>Never suggested</h2>{_simple_list(report['never_suggested'], ['kind', 'id', 'title'], 'Every item was suggested at least once.')}
<h2>Stale</h2><p>Not updated for a long time, yet often shown or dismissed: worth a read.</p>
{_simple_list(report['stale'], ['kind', 'id', 'title', 'updated', 'age_days', 'shown', 'dismissed'], 'No stale items.')}
<h2>Experiments</h2>{_experiments(report['experiments'])}
<h2>Help centre</h2>{_help(report.get('help'))}
</html>"""
