"""Eval reports as objects (save, table, compare), the regression gate and the HTML report."""

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from evals.io import write_jsonl

# Lower is better for these; every other numeric metric is higher-is-better.
LOWER_IS_BETTER = ("latency", "abstain_rate_in_scope", "ece")
# Latency depends on the machine: shown, never gated.
NOT_GATED = ("latency", "clarify_rate")


@dataclass
class Report:
    """What an eval measured: `data` is report.json; `records` (per variant, one row per query) go
    to records.jsonl; `titles` name articles in the HTML report; `columns` are the table's metrics."""

    data: dict
    records: dict[str, list[dict]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] = ()

    @property
    def variants(self) -> dict[str, dict]:
        return self.data.get("variants") or {}

    def to_dict(self) -> dict:
        return self.data

    def save(self, out: Path) -> list[Path]:
        """Write report.json, plus report.html for per-variant reports and records.jsonl when there
        are records; return the paths written."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "report.json"]
        written[0].write_text(json.dumps(self.data, ensure_ascii=False, indent=2), encoding="utf-8")
        if self.variants or self.data.get("reliability"):
            written.append(out / "report.html")
            written[-1].write_text(render_html(self.data, self.records, self.titles), encoding="utf-8")
        if self.records:
            written.append(out / "records.jsonl")
            write_jsonl(written[-1], ({"variant": variant, **r} for variant, rows in self.records.items() for r in rows))
        return written

    def table(self) -> str:
        """One row per variant, one column per metric (names shortened to fit); JSON without variants."""
        if not self.variants:
            return json.dumps(self.data, ensure_ascii=False)
        cols = list(self.columns) or sorted({k for m in self.variants.values() for k in m})
        short = [c.replace("answer_", "ans_").replace("template_", "tpl_").replace("escalation_", "esc_") for c in cols]
        width = max(10, *(len(name) for name in self.variants))
        lines = [f"{'variant':{width}} " + " ".join(f"{c:>14}" for c in short)]
        for name, m in self.variants.items():
            lines.append(f"{name:{width}} " + " ".join(f"{m.get(c, float('nan')):>14.3f}" for c in cols))
        return "\n".join(lines)


def _flatten(report: dict) -> dict[str, float]:
    out = {}
    for variant, metrics in (report.get("variants") or {}).items():
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                out[f"{variant}.{name}"] = float(value)
        for slice_name, slice_metrics in (metrics.get("slices") or {}).items():
            for name, value in slice_metrics.items():
                if isinstance(value, (int, float)) and name != "n":
                    out[f"{variant}.{slice_name}.{name}"] = float(value)
    for name in ("accuracy", "macro_f1", "oos_precision", "oos_recall", "ece"):
        if isinstance(report.get(name), (int, float)):
            out[name] = float(report[name])
    return out


def compare_reports(before: dict, after: dict, max_drop: float) -> tuple[list[tuple[str, float, float, bool]], int]:
    """Rows (metric, before, after, regressed) for metrics in both reports, and the regression count."""
    a, b = _flatten(before), _flatten(after)
    rows, failed = [], 0
    for name in sorted(set(a) & set(b)):
        change = b[name] - a[name]
        if any(k in name for k in LOWER_IS_BETTER):
            change = -change
        bad = change < -max_drop and not any(k in name for k in NOT_GATED)
        failed += bad
        rows.append((name, a[name], b[name], bad))
    return rows, failed


# --- HTML report -----------------------------------------------------------------------------------

_SLICE_COLUMNS = ["answer_hit@1", "answer_hit@3", "answer_mrr@10", "template_hit@3", "intent_accuracy", "abstain_rate_in_scope"]
COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]


def _svg_lines(series: dict[str, list[float]], xs: list[int], title: str, w: int = 420, h: int = 240) -> str:
    pad = 40
    def x(i):
        return pad + (w - 2 * pad) * (i / max(1, len(xs) - 1))
    def y(v):
        return h - pad - (h - 2 * pad) * v
    parts = [f'<svg width="{w}" height="{h}" role="img"><title>{html.escape(title)}</title>',
             f'<text x="{pad}" y="18" font-size="13">{html.escape(title)}</text>']
    for t in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line x1="{pad}" x2="{w - pad}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>'
                     f'<text x="4" y="{y(t) + 4:.1f}" font-size="10">{t:.2f}</text>')
    for i, k in enumerate(xs):
        parts.append(f'<text x="{x(i) - 8:.1f}" y="{h - pad + 16}" font-size="10">@{k}</text>')
    for n, (name, vals) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{w - pad + 4}" y="{y(vals[-1]) + 4:.1f}" font-size="10" fill="{color}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_bars(rows: list[tuple[str, float]], title: str, w: int = 520) -> str:
    bar, gap, left = 14, 4, 170
    h = 30 + len(rows) * (bar + gap)
    parts = [f'<svg width="{w}" height="{h}" role="img"><title>{html.escape(title)}</title>',
             f'<text x="4" y="16" font-size="13">{html.escape(title)}</text>']
    for i, (name, v) in enumerate(rows):
        top = 26 + i * (bar + gap)
        width = (w - left - 50) * max(0.0, min(1.0, v))
        color = "#16a34a" if v >= 0.8 else "#ea580c" if v >= 0.5 else "#dc2626"
        parts.append(f'<text x="4" y="{top + 11}" font-size="11">{html.escape(name)}</text>'
                     f'<rect x="{left}" y="{top}" width="{width:.1f}" height="{bar}" fill="{color}"/>'
                     f'<text x="{left + width + 4:.1f}" y="{top + 11}" font-size="10">{v:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_histogram(values: list[float], title: str, w: int = 420, h: int = 200, bins: int = 20) -> str:
    if not values:
        return ""
    hi = max(values) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / hi * bins))] += 1
    top = max(counts) or 1
    bw = (w - 50) / bins
    parts = [f'<svg width="{w}" height="{h}" role="img"><title>{html.escape(title)}</title>',
             f'<text x="4" y="16" font-size="13">{html.escape(title)}</text>']
    for i, c in enumerate(counts):
        bh = (h - 50) * c / top
        parts.append(f'<rect x="{30 + i * bw:.1f}" y="{h - 25 - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" fill="#2563eb"/>')
    parts.append(f'<text x="30" y="{h - 8}" font-size="10">0 ms</text><text x="{w - 70}" y="{h - 8}" font-size="10">{hi:.1f} ms</text></svg>')
    return "".join(parts)


def _svg_reliability(bins: list[dict], title: str, w: int = 300, h: int = 300) -> str:
    """Reliability diagram: per confidence bin, accuracy (bar) against the diagonal of perfect calibration."""
    pad = 36
    side = min(w, h) - 2 * pad
    def x(v):
        return pad + side * v
    def y(v):
        return pad + side * (1 - v)
    parts = [f'<svg width="{w}" height="{h}" role="img"><title>{html.escape(title)}</title>',
             f'<text x="4" y="16" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" stroke-dasharray="4"/>',
             f'<rect x="{x(0)}" y="{y(1)}" width="{side}" height="{side}" fill="none" stroke="#ccc"/>']
    for b in bins:
        if not b.get("n"):
            continue
        bw = side * (b["high"] - b["low"])
        parts.append(f'<rect x="{x(b["low"]) + 1:.1f}" y="{y(b["accuracy"]):.1f}" width="{bw - 2:.1f}" '
                     f'height="{side * b["accuracy"]:.1f}" fill="#2563eb" opacity="0.75"><title>{b["low"]:.1f}–{b["high"]:.1f}: '
                     f'n={b["n"]}, confidence {b["confidence"]:.2f}, accuracy {b["accuracy"]:.2f}</title></rect>'
                     f'<circle cx="{x(b["confidence"]):.1f}" cy="{y(b["confidence"]):.1f}" r="2.5" fill="#dc2626"/>')
    for t in (0, 0.5, 1):
        parts.append(f'<text x="{x(t) - 6:.1f}" y="{h - 14}" font-size="10">{t:.1f}</text>'
                     f'<text x="6" y="{y(t) + 4:.1f}" font-size="10">{t:.1f}</text>')
    parts.append(f'<text x="{pad}" y="{h - 2}" font-size="10">confidence shown (red dot: mean) · bar: how often right</text></svg>')
    return "".join(parts)


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(f'{c:.3f}' if isinstance(c, float) else str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict, records: dict[str, list[dict]] | None = None, titles: dict[str, str] | None = None) -> str:
    """A self-contained page (inline SVG, no scripts or downloads) for KB editors and QA."""
    titles = titles or {}
    records = records or {}
    variants = report.get("variants", {})
    metric_names = sorted({k for m in variants.values() for k, v in m.items() if not isinstance(v, dict)})
    parts = [
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>assist eval report</title>",
        "<style>body{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei',system-ui,sans-serif;margin:24px;color:#111}"
        "table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left}"
        "th{background:#f5f5f5}.plots{display:flex;flex-wrap:wrap;gap:24px}</style></head><body>",
        f"<h1>assist eval report</h1><p>{report.get('n_conversations', report.get('n_queries', ''))} queries · "
        f"index {html.escape(str(report.get('index_version', '')))} · model {html.escape(str(report.get('model', '')))}</p>",
    ]
    if variants:
        parts += ["<h2>Metrics per variant</h2>",
                  _table(["metric", *variants], [[m, *[variants[v].get(m, "") for v in variants]] for m in metric_names])]
    else:
        flat = [[k, v] for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        parts += ["<h2>Metrics</h2>", _table(["metric", "value"], flat)]
    sliced = {v: m["slices"] for v, m in variants.items() if m.get("slices")}
    if sliced:
        parts.append("<h2>Language slices</h2><p>chinese / english requests; cross_lingual: English requests whose "
                     "answers exist only in Chinese articles.</p>")
        rows = [[v, name, s["n"], *[s.get(k, "") for k in _SLICE_COLUMNS]] for v, by in sliced.items() for name, s in by.items()]
        parts.append(_table(["variant", "slice", "n", *_SLICE_COLUMNS], rows))
    parts.append("<div class='plots'>")
    ks = [1, 3, 5]
    curves = {v: [m.get(f"answer_hit@{k}", m.get(f"hit@{k}", 0.0)) for k in ks] for v, m in variants.items()}
    parts.append(_svg_lines(curves, ks, "answer hit@k per variant"))
    per_intent = report.get("per_intent") or {}
    if per_intent:
        parts.append(_svg_bars([(n, v["intent_accuracy"]) for n, v in per_intent.items()], "intent accuracy per intent (full)"))
        parts.append(_svg_bars([(n, v["answer_hit@3"]) for n, v in per_intent.items() if v["answer_hit@3"] is not None], "answer hit@3 per intent (full)"))
    if report.get("reliability"):
        ece = report.get("ece", (variants.get("full") or {}).get("intent_ece"))
        parts.append(_svg_reliability(report["reliability"], f"intent confidence reliability (ECE {ece:.3f})" if ece is not None
                                      else "intent confidence reliability"))
    main = records.get("full") or next(iter(records.values()), [])
    if main and "latency_ms" in main[0]:
        parts.append(_svg_histogram([r["latency_ms"] for r in main], "suggest latency (full pipeline)"))
    parts.append("</div>")
    misses = report.get("misses") or []
    if misses:
        parts.append(f"<h2>Misses: gold article not in the top 3 ({len(misses)})</h2>")
        rows = [[m["id"], m["query"], f"{m['gold_intent']} → {m['intent']}",
                 "、".join(titles.get(a, a) for a in m["relevant"]),
                 "（不回答）" if m["abstained"] else "、".join(titles.get(a, a) for a in m["answers"][:3])] for m in misses]
        parts.append(_table(["id", "query", "intent gold → got", "should have found", "returned instead"], rows))
    parts.append("</body></html>")
    return "".join(parts)
