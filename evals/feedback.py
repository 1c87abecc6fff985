"""Agents' "used" feedback -> new labelled cases: a suggestion an agent sent is a gold label."""

import json

from assist.feedback import FeedbackStore


def cases_from_feedback(store: FeedbackStore, known_ids: set[str] = frozenset(), limit: int = 100_000) -> list[dict]:
    """One case per conversation with at least one "used" suggestion; articles become `relevant`,
    templates become `templates`, the intent detected at the time becomes the (to be reviewed) gold intent.
    Conversations are already PII-redacted by the store."""
    cases: dict[str, dict] = {}
    for e in store.events("used", limit=limit):
        if not e.conversation or not any(t["role"] == "customer" for t in e.conversation):
            continue
        key = json.dumps([e.session_id, e.conversation], ensure_ascii=False)
        case = cases.setdefault(key, {
            "id": f"fb-{e.id}",
            "conversation": [dict(t) for t in e.conversation],
            "customer": None,
            "intent": e.intent,
            "relevant": [],
            "templates": [],
            "escalate": False,
            "tags": ["feedback", "review"],
            "source": {"feedback_id": e.id, "index_version": e.index_version, "created_at": e.created_at},
        })
        target = case["relevant"] if e.kind == "article" else case["templates"]
        if e.suggestion_id not in target:
            target.append(e.suggestion_id)
    return [c for c in cases.values() if c["id"] not in known_ids]
