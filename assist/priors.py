"""Feedback-weighted ranking: a smoothed, time-decayed acceptance rate per article and template.

For each item, shown = how often the suggestion log listed it and used = its `used` events (an
`edited` one counts half), each weighted 0.5 ** (age / half-life). The rate is the Beta posterior mean
(used + m·k) / (shown + m·k + (1-m)·k) with m the acceptance of all items and k the prior's strength, so
an item shown twice moves little. Ranking adds `weight x (rate - m)` to the item's score: items agents
keep using rise, items they keep dismissing sink. Off (weight 0) unless the eval shows it helps
(bench/feedback_ranking.py).
"""

from collections import defaultdict
from datetime import datetime

EDITED_CREDIT = 0.5


def _age_days(created_at: str, now: datetime) -> float:
    try:
        return max(0.0, (now - datetime.fromisoformat(created_at)).total_seconds() / 86400)
    except ValueError:
        return 0.0


def compute_nudges(suggestions, feedback, now: datetime, half_life_days: float, strength: float, weight: float
                   ) -> dict[tuple[str, str], float]:
    """(kind, id) -> the score added to that item, from the logged suggestions and feedback events."""
    decay = lambda created: 0.5 ** (_age_days(created, now) / half_life_days)  # noqa: E731
    shown: dict[tuple[str, str], float] = defaultdict(float)
    used: dict[tuple[str, str], float] = defaultdict(float)
    for s in suggestions:
        w = decay(s.created_at)
        for a in s.answers:
            shown[("article", a)] += w
        for t in s.templates:
            shown[("template", t)] += w
    for f in feedback:
        if f.event in ("used", "edited"):
            used[(f.kind, f.suggestion_id)] += decay(f.created_at) * (1.0 if f.event == "used" else EDITED_CREDIT)
    total_shown = sum(shown.values())
    if total_shown == 0 or weight == 0:
        return {}
    mean = min(1.0, sum(used.values()) / total_shown)
    out = {}
    for key, n in shown.items():
        rate = (min(used[key], n) + mean * strength) / (n + strength)
        out[key] = weight * (rate - mean)
    return out
