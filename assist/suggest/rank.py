"""Answer ranking: intent boost, one hit per article (sections and FAQ questions merged), direct answers,
abstain threshold, matched terms and snippets."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from assist.index.chunk import Chunk
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
    matched_question: str | None = None  # the FAQ question (standard or similar) that matched, if one did
    direct: bool = False  # the customer asked that question (near-exact): a direct answer


def boosted(hits: list[Hit], intent: str, confidence: float, weight: float, question_offset: float = 0.0) -> list[tuple[Hit, float]]:
    """Hits re-scored: + weight x confidence when the chunk is written for the detected intent;
    FAQ question rows + `question_offset` (their cosine runs higher than a question-to-section one)."""
    scored = [(h, h.score + (weight * confidence if intent in h.chunk.intents else 0.0)
               + (question_offset if h.chunk.question else 0.0)) for h in hits]
    return sorted(scored, key=lambda pair: -pair[1])


# Sections telling a customer how to complain to a regulator (12315, 消协, 市场监管...): never the answer
# an agent is handed for an upset customer, whom the conversation should win back first.
REGULATOR_CHANNELS = re.compile(r"12315|消协|消费者协会|工商局|市场监管|监管部门")


def without_regulator_channels(scored: list[tuple[Hit, float]]) -> list[tuple[Hit, float]]:
    """The hits minus sections that point to a regulator (other sections of their article stay)."""
    return [(h, s) for h, s in scored if not REGULATOR_CHANNELS.search(h.chunk.embed_text)]


def best_per_article(scored: list[tuple[Hit, float]], lead: Callable[[str], Chunk | None] | None = None
                     ) -> list[tuple[Hit, float, str | None]]:
    """Each article once, at its best row, with the FAQ question that matched (None when a section did).
    When the best row is a question, the answer shows the article's best section among the hits, else
    its first section (`lead(article_id)`)."""
    best: dict[str, list] = {}  # article id -> [best hit, score, best section hit or None]
    for hit, score in scored:
        entry = best.get(hit.chunk.article_id)
        if entry is None:
            best[hit.chunk.article_id] = [hit, score, None if hit.chunk.question else hit]
        elif entry[2] is None and not hit.chunk.question:
            entry[2] = hit
    out = []
    for article_id, (hit, score, section) in best.items():
        question = hit.chunk.text if hit.chunk.question else None
        if section is None:
            chunk = lead(article_id) if lead else None
            section = hit if chunk is None else Hit(chunk, hit.score, hit.dense_score, hit.bm25_score)
        out.append((section, score, question))
    return out


def matched_terms(terms: list[str], text: str) -> tuple[str, ...]:
    """Query terms found in the text; single characters only when nothing longer matched
    (highlighting every 退 or 付 would mark half a snippet)."""
    lowered = text.lower()
    found = [t for t in terms if t in lowered]
    longer = [t for t in found if len(t) > 1]
    return tuple(longer or found)


_MARKUP = re.compile(r"\*\*|__|^\s*(?:```|~~~)\w*|`+|^#+\s|^\s*[-*]\s|^\s*\|", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")  # an image reads as its alt text


def snippet(text: str, terms: tuple[str, ...], width: int = 120) -> str:
    """A window of the section around the first matched term (the section start when none match)."""
    flat = " ".join(_MARKUP.sub("", _IMAGE.sub(r"\1", text)).split())
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


def to_answers(merged: list[tuple[Hit, float, str | None]], terms: list[str], top_k: int,
               direct: str | None = None) -> list[Answer]:
    """Answers from `best_per_article` rows; `direct` is the id of an article whose question the
    customer asked word for word (it is then first, see `direct_first`)."""
    out = []
    for hit, score, question in merged[:top_k]:
        c = hit.chunk
        found = matched_terms(terms, c.embed_text)
        out.append(Answer(c.article_id, c.title, c.heading_path, snippet(c.text, found), round(score, 4), found, c.chunk_id,
                          question, c.article_id == direct))
    return out


def direct_first(merged: list[tuple[Hit, float, str | None]], article_id: str, question: str,
                 lead: Callable[[str], Chunk | None]) -> list[tuple[Hit, float, str | None]]:
    """The article whose FAQ question the customer asked goes first, above every other score, with that
    question; found among the hits or, when retrieval missed it, at its first section."""
    rest = [row for row in merged if row[0].chunk.article_id != article_id]
    mine = next((row for row in merged if row[0].chunk.article_id == article_id), None)
    top = max((row[1] for row in merged), default=0.0)
    if mine is None:
        chunk = lead(article_id)
        if chunk is None:
            return merged
        mine = (Hit(chunk, top), top, question)
    return [(mine[0], top + DIRECT_MARGIN, question), *rest]  # `top` is the best score, its own included


DIRECT_MARGIN = 0.1  # how far a direct answer's score sits above the best other answer
