"""Suggester.suggest(conversation) -> intent, emotion, ranked answers and filled templates (DESIGN §4)."""

import copy
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from assist.config import SuggestSettings
from assist.errors import AssistError
from assist.index.search import Index
from assist.kb import OUT_OF_SCOPE
from assist.suggest.emotion import Emotion, detect_emotion
from assist.suggest.intent import IntentDetector, IntentResult, is_latin
from assist.suggest.query import ROLES, Query, Turn, build_query, last_turn_query
from assist.suggest.rank import Answer, best_per_article, boosted, direct_first, should_abstain, to_answers, without_regulator_channels
from assist.suggest.routing import VIP_TIERS, Clarify, Handoff, Route, clarify_for, handoff_note, route_for
from assist.suggest.templates import RenderedTemplate, contradicts_state, extract_entities, other_product, render


@functools.cache
def _side_thread() -> ThreadPoolExecutor:
    """One thread per process for BM25 scoring while onnxruntime encodes the query (it releases the GIL)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="assist-bm25")


@dataclass(frozen=True)
class Suggestion:
    intent: IntentResult
    emotion: Emotion
    answers: list[Answer]
    templates: list[RenderedTemplate]
    query: Query
    abstained: bool
    top_similarity: float | None  # best dense similarity of any article section: how sure retrieval is
    index_version: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    clarify: Clarify | None = None
    route: Route | None = None
    handoff: Handoff | None = None
    query_vector: object = None  # the encoded query (numpy), for the suggestion log; not part of the response

    def to_dict(self) -> dict:
        """The JSON shape of DESIGN §4. Built field by field from the (flat, frozen) dataclasses:
        `dataclasses.asdict` deep-copies every nested value and cost a quarter of a millisecond here."""
        i = self.intent
        return {
            "intent": {
                "name": i.name, "label": i.label, "confidence": i.confidence, "escalate": i.escalate,
                "alternatives": [_fields(a) for a in i.alternatives],
            },
            "emotion": {"level": self.emotion.level, "escalate": self.emotion.escalate, "cues": list(self.emotion.cues)},
            "answers": [{**_fields(a), "heading_path": list(a.heading_path), "matched_terms": list(a.matched_terms)} for a in self.answers],
            "templates": [{**_fields(t), "missing_variables": list(t.missing_variables),
                           "missing": [_fields(m) for m in t.missing]} for t in self.templates],
            "abstained": self.abstained,
            "clarify": None if self.clarify is None else {
                "question": self.clarify.question, "options": [_fields(o) for o in self.clarify.options]},
            "route": None if self.route is None else _fields(self.route),
            "handoff": None if self.handoff is None else _fields(self.handoff),
            "top_similarity": None if self.top_similarity is None else round(self.top_similarity, 4),
            "query": self.query.text,
            "index_version": self.index_version,
            "timings_ms": self.timings_ms,
        }


def _fields(obj) -> dict:
    """A flat dataclass's fields as a new dict (its values are not copied)."""
    return dict(obj.__dict__)


def parse_turns(conversation: list) -> list[Turn]:
    """Turns from dicts ({role, text}) or Turn objects, with a clear error on anything else."""
    turns = []
    for n, t in enumerate(conversation, 1):
        if isinstance(t, Turn):
            turns.append(t)
            continue
        if not isinstance(t, dict) or not isinstance(t.get("text"), str):
            raise AssistError(f"turn {n}: expected an object with 'role' and 'text'")
        if t.get("role") not in ROLES:
            raise AssistError(f"turn {n}: role must be one of {', '.join(ROLES)}, not {t.get('role')!r}")
        turns.append(Turn(t["role"], t["text"]))
    return turns


class Suggester:
    """The suggest pipeline over one loaded index version (its KB snapshot gives intents and templates)."""

    def __init__(self, index: Index, settings: SuggestSettings = SuggestSettings()):
        self.index = index
        self.settings = settings
        self.intents = list(index.kb.intents)
        self._escalating = {i.name for i in self.intents if i.escalate}
        self._intents = {i.name: i for i in self.intents}
        self.templates = {t.id: t for t in index.kb.templates}
        self.detector = IntentDetector(self.intents, index.intent_model)
        self.variants: dict[str, str] = {}  # template id -> the variant shown instead (an experiment arm)
        self.hidden: frozenset[str] = frozenset()  # templates only some other arm shows
        # feedback-weighted ranking: (kind, id) -> score added (assist.priors); replaced whole, never edited
        self.nudges: dict[tuple[str, str], float] = {}
        # an article / FAQ entry is vetoed by a request naming one of its negative keywords
        self._negatives = {a.id: tuple(k.lower() for k in a.negative_keywords) for a in index.kb.published if a.negative_keywords}

    def with_variants(self, variants: dict[str, str], hidden: frozenset[str]) -> "Suggester":
        """A copy that shows `variants[t]` wherever it would show template t, and never the `hidden` ones."""
        other = copy.copy(self)
        other.variants, other.hidden = dict(variants), frozenset(hidden) - set(variants.values())
        return other

    def with_settings(self, **update) -> "Suggester":
        """A copy with some settings changed (evals and tuning switch pieces off or try other values)."""
        other = copy.copy(self)
        other.settings = self.settings.model_validate({**self.settings.model_dump(), **update})
        return other

    def suggest(self, conversation: list, customer: dict | None = None, top_k: int | None = None,
                mode: str = "hybrid", last_turn_only: bool = False) -> Suggestion:
        """Suggestions for the conversation so far. `mode` and `last_turn_only` exist for evals."""
        s = self.settings
        customer = customer or {}
        top_k = top_k or s.answers
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round((now - clock) * 1000, 3)
            clock = now

        turns = parse_turns(conversation)
        query = last_turn_query(turns) if last_turn_only else build_query(turns, s.max_context_turns)
        customer_texts = [t.text for t in turns if t.role == "customer"]
        lap("query")
        qvec = bm25_ahead = None
        if query.text:  # the intent model reads the query vector in every mode
            if mode in ("hybrid", "bm25"):  # jieba + BM25 (pure Python) meanwhile; search then finds the lexical memo
                bm25_ahead = _side_thread().submit(self.index.lexical.scores, query.text, self.index.hybrid.synonyms)
            qvec = self.index.embedder.encode_queries([query.text])[0]
            if bm25_ahead is not None:
                bm25_ahead.result()
        lap("encode")
        depth = max(4 * top_k, s.candidates)
        hits = self.index.search(query.text, k=depth, mode=mode, kind="article", query_vector=qvec) if query.text else []
        lap("retrieve")
        intent = self.detector.detect(query.text, qvec, hits)
        if intent.name == OUT_OF_SCOPE and not query.context and not last_turn_only:
            # alone the latest turn looks out of scope; as a follow-up of the earlier requests it may not be
            folded = build_query(turns, s.max_context_turns, force_context=True)
            if folded.context:
                again = self.detector.detect(folded.text, self.index.embedder.encode_queries([folded.text])[0])
                if again.name != OUT_OF_SCOPE:
                    intent = again
        lap("intent")
        emotion = detect_emotion(customer_texts, intent.name in self._escalating, s.escalate_level)
        lap("emotion")
        # how sure retrieval is, from article sections alone: a short FAQ question resembles any short request
        vetoed = self._vetoed(query.text)
        top_similarity = max((h.dense_score for h in hits if h.dense_score is not None and h.chunk.article_id not in vetoed), default=None)
        direct_text = customer_texts[-1] if customer_texts else ""
        abstained, answers = self.rank_answers(query.text, qvec, hits, intent, direct_text, top_k, mode,
                                               calm=emotion.escalate)
        lap("rank")
        templates = self._templates(query, qvec, intent, emotion, customer, customer_texts, mode, abstained) if query.text else []
        lap("templates")
        clarify = clarify_for(intent, self._intents, s, is_latin(query.text)) if query.text and not abstained else None
        route = route_for(intent, emotion, customer, self._intents, s)
        handoff = None
        if route.transfer:
            handoff = handoff_note(route, intent, emotion, extract_entities(customer_texts), customer,
                                   [a.title for a in answers], [t.title for t in templates],
                                   customer_texts[-1] if customer_texts else "")
        lap("route")
        timings["total"] = round(sum(timings.values()), 3)
        return Suggestion(intent, emotion, answers, templates, query, abstained, top_similarity, self.index.version, timings,
                          clarify, route, handoff, qvec)

    def rank_answers(self, text: str, qvec, hits: list, intent: IntentResult, asked_text: str, top_k: int,
                     mode: str = "hybrid", calm: bool = False, audience: str = "") -> tuple[bool, list[Answer]]:
        """(abstained, answers) from the article-section `hits` of the query `text`: FAQ question rows
        merged per article, the negative-keyword veto, a direct answer when `asked_text` is one of the
        KB's questions word for word, and the abstain decision. `calm` (an upset customer) leaves out
        sections that point to a regulator. `audience="public"` keeps to what customers may see: `hits`
        must then come from the "public-article" rows."""
        s = self.settings
        public = audience == "public"
        vetoed = self._vetoed(text)
        if vetoed:
            hits = [h for h in hits if h.chunk.article_id not in vetoed]
        # the customer asked one of the KB's FAQ questions (after normalisation): its answer, first
        direct = self.index.direct_question(asked_text) if s.direct_answers and s.question_rows and asked_text else None
        if direct is not None and (direct[0] in vetoed or (public and self.index.public_lead(direct[0]) is None)):
            direct = None
        offset = s.latin_offset if is_latin(text) else 0.0
        abstained = direct is None and (not hits or should_abstain(
            hits, intent.name == OUT_OF_SCOPE, s.abstain_min_dense - offset, s.abstain_min_dense_oos - offset))
        if abstained:
            return True, []
        terms = self.index.lexical.query_terms(text, self.index.hybrid.synonyms)
        # the KB's FAQ questions, matched question to question; merged with the sections per article
        kind = "public-question" if public else "question"
        asked = (self.index.search(text, k=max(4 * top_k, s.candidates), mode=mode, kind=kind, query_vector=qvec)
                 if text and s.question_rows and self.index.has_questions else [])
        asked = [h for h in asked if h.chunk.article_id not in vetoed]
        scored = boosted(hits + asked, intent.name, intent.confidence, s.intent_boost, s.question_offset)
        nudges = self.nudges
        if nudges:
            scored = sorted(((h, v + nudges.get(("article", h.chunk.article_id), 0.0)) for h, v in scored), key=lambda p: -p[1])
        if calm:
            scored = without_regulator_channels(scored)
        lead = self.index.public_lead if public else self.index.lead_section
        merged = best_per_article(scored, lead)
        if direct is not None:
            merged = direct_first(merged, *direct, lead)
        return False, to_answers(merged, terms, top_k, direct[0] if direct else None)

    def _vetoed(self, text: str) -> set[str]:
        """Ids of the articles and FAQ entries whose negative keywords the request contains."""
        lowered = text.lower()
        return {aid for aid, words in self._negatives.items() if any(w in lowered for w in words)}

    def _templates(self, query: Query, qvec, intent: IntentResult, emotion: Emotion, customer: dict,
                   customer_texts: list[str], mode: str, abstained: bool) -> list[RenderedTemplate]:
        """Reply templates under the same decision as the answers: when the KB has no good answer, no
        reply is offered either, except the apology / hand-off ones for an upset customer."""
        n = self.settings.templates
        if n == 0 or (abstained and not emotion.escalate):
            return []
        hits = self.index.search(query.text, k=len(self.templates), mode=mode, kind="template", query_vector=qvec)
        vip = str(customer.get("tier", "")).lower() in VIP_TIERS
        values = {**extract_entities(customer_texts), **{k: str(v) for k, v in customer.items() if v not in (None, "")}}
        if "name" in customer and "customer_name" not in values:
            values["customer_name"] = str(customer["name"])
        scored = []
        nudges = self.nudges
        for hit, score in boosted(hits, intent.name, intent.confidence, self.settings.intent_boost):
            score += nudges.get(("template", hit.chunk.article_id), 0.0)
            t = self.templates.get(hit.chunk.article_id)
            if t is None or t.id in self.hidden:
                continue
            t = self.templates.get(self.variants.get(t.id, t.id), t)
            if t.tier and not vip:  # VIP-only variants are for VIP customers only
                continue
            # VIP customers get the VIP variant of the detected intent first
            first = bool(vip and t.tier and intent.name in t.intents)
            mismatch = contradicts_state(t, customer_texts, values) or other_product(t, customer_texts)
            scored.append((first, mismatch, score, t))
        # VIP variant first; a reply that contradicts what the conversation says (a tracking number before
        # shipping, another product's instructions) last
        scored.sort(key=lambda x: (not x[0], x[1], -x[2]))
        scored = [(first, score, t) for first, _, score, t in scored]
        if abstained:  # escalating: hand-off material only, never a guess at the request
            scored = [x for x in scored if self._escalating & set(x[2].intents)]
        elif emotion.escalate:  # an upset customer is calmed first: the apology / hand-off reply leads
            calming = next((x for x in scored if self._escalating & set(x[2].intents)), None)
            if calming is not None:
                scored.remove(calming)
                scored.insert(0, calming)
        out = []
        for _, score, t in scored[:n]:
            text, missing = render(t, values)
            purpose = "escalation" if emotion.escalate and self._escalating & set(t.intents) else "reply"
            out.append(RenderedTemplate(t.id, t.title, text, missing, round(score, 4), t.tier, purpose))
        return out
