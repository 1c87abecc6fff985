"""Answer ranking: intent boost, one hit per article, abstain threshold, matched terms and snippets."""

import re
from dataclasses import dataclass

from assist.index.search import Hit


@dataclass(frozen=True)
class Answer:
    article_id: str
    title: str
    heading_path: tuple[str, ...]
    snippet: str
    score: float
    matched_terms: tuple[str, ...]
    chunk_id: str


def boosted(hits: list[Hit], intent: str, confidence: float, weight: float) -> list[tuple[Hit, float]]:
    """Hits re-scored: + weight x confidence when the chunk is written for the detected intent."""
    scored = [(h, h.score + (weight * confidence if intent in h.chunk.intents else 0.0)) for h in hits]
    return sorted(scored, key=lambda pair: -pair[1])


# Sections telling a customer how to complain to a regulator (12315, 消协, 市场监管...): never the answer
# an agent is handed for an upset customer, whom the conversation should win back first.
REGULATOR_CHANNELS = re.compile(r"12315|消协|消费者协会|工商局|市场监管|监管部门")


def without_regulator_channels(scored: list[tuple[Hit, float]]) -> list[tuple[Hit, float]]:
    """The hits minus sections that point to a regulator (other sections of their article stay)."""
    return [(h, s) for h, s in scored if not REGULATOR_CHANNELS.search(h.chunk.embed_text)]


def best_per_article(scored: list[tuple[Hit, float]]) -> list[tuple[Hit, float]]:
    """Keep each article once, at its best section."""
    seen, out = set(), []
    for hit, score in scored:
        if hit.chunk.article_id not in seen:
            seen.add(hit.chunk.article_id)
            out.append((hit, score))
    return out


def matched_terms(terms: list[str], text: str) -> tuple[str, ...]:
    """Query terms found in the text; single characters only when nothing longer matched
    (highlighting every 退 or 付 would mark half a snippet)."""
    lowered = text.lower()
    found = [t for t in terms if t in lowered]
    longer = [t for t in found if len(t) > 1]
    return tuple(longer or found)


_MARKUP = re.compile(r"\*\*|__|`+|^#+\s|^\s*[-*]\s|^\s*\|", re.MULTILINE)


def snippet(text: str, terms: tuple[str, ...], width: int = 120) -> str:
    """A window of the section around the first matched term (the section start when none match)."""
    flat = " ".join(_MARKUP.sub("", text).split())
    if len(flat) <= width:
        return flat
    lowered = flat.lower()
    first = min((lowered.find(t) for t in terms if t in lowered), default=0)
    start = max(0, min(first - width // 4, len(flat) - width))
    return ("…" if start else "") + flat[start : start + width] + ("…" if start + width < len(flat) else "")


def should_abstain(hits: list[Hit], out_of_scope: bool, min_dense: float, min_dense_oos: float) -> bool:
    """No answer beats noise: the best dense similarity must clear a bar, a higher one when the
    request looks out of scope. Calibrated on labelled conversations (see README)."""
    best = max((h.dense_score for h in hits if h.dense_score is not None), default=None)
    if best is None:  # BM25-only index: abstain only when nothing matched at all
        return not hits
    return best < (min_dense_oos if out_of_scope else min_dense)


def to_answers(scored: list[tuple[Hit, float]], terms: list[str], top_k: int) -> list[Answer]:
    out = []
    for hit, score in scored[:top_k]:
        c = hit.chunk
        found = matched_terms(terms, c.embed_text)
        out.append(Answer(c.article_id, c.title, c.heading_path, snippet(c.text, found), round(score, 4), found, c.chunk_id))
    return out
