"""Conversation -> retrieval query: the latest customer turn first, earlier context only when needed."""

import re
from dataclasses import dataclass

from assist.suggest.templates import IDENTIFIERS

ROLES = ("customer", "agent", "system")

# Whole turns that carry no request: greetings, thanks, acknowledgements, "are you there".
_FILLER_TURN = re.compile(
    r"^(?:(?:你好|您好|hi|hello|hey|在吗|在不在|有人吗|亲|客服|谢谢|多谢|感谢|thanks|thank you|thx|好的|好|ok|okay|嗯+|哦+|恩+|行|可以|收到|明白了?|知道了|麻烦了|辛苦了?|打扰了|拜拜|再见|bye)"
    r"[\s,，.。!！?？~～、…]*)+$",
    re.IGNORECASE,
)
# Greeting / politeness phrases stripped from the start or end of a turn that does carry a request.
_FILLER_EDGE = re.compile(
    r"^(?:(?:你好|您好|hi|hello|hey|在吗|亲|客服|请问|麻烦问一下|问一下|我想问一下|想问下|打扰一下)[\s,，.。!！?？~～、]*)+"
    r"|(?:[\s,，.。!！?？~～、]*(?:谢谢|多谢|感谢|thanks|thank you|thx|麻烦了|辛苦了))+[\s,，.。!！?？~～]*$",
    re.IGNORECASE,
)
# Follow-ups that lean on an earlier turn: "怎么还没到", "那个呢", "它", "这个".
_DEPENDENT = re.compile(r"^(?:那|那个|这个|它|还是|还没|怎么还|为什么还|到底|所以|然后|那要|那我|那怎么|还要|还有|and|so|what about|still)|(?:呢|吗)[?？]?$|还没")


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True)
class Query:
    text: str  # what retrieval and intent detection see
    latest: str  # the latest customer request, filler removed
    context: tuple[str, ...] = ()  # earlier customer requests folded in, most recent first


def clean(text: str) -> str:
    """A turn without greetings and thanks; empty when the turn is only filler."""
    text = " ".join(IDENTIFIERS.sub(" ", text).split())
    if _FILLER_TURN.match(text):
        return ""
    return _FILLER_EDGE.sub("", text).strip()


def needs_context(latest: str, min_chars: int = 8) -> bool:
    """A short or dependent follow-up ("怎么还没到") needs the earlier turns to make sense."""
    content = re.sub(r"[\s\W_]+", "", latest)
    return len(content) < min_chars or bool(_DEPENDENT.search(latest))


def build_query(turns: list[Turn], max_context: int = 2, force_context: bool = False) -> Query:
    """The latest customer request, plus earlier customer requests when it depends on them.

    Agent turns are context only: they never become the query. `force_context` folds the earlier
    requests in whatever the latest one says (the intent of a follow-up that alone looks out of
    scope). Older turns come after the latest one,
    so they weigh less for BM25 ties and for the encoder's attention; a self-contained new request
    drops the old topic entirely.
    """
    requests = [c for t in turns if t.role == "customer" and (c := clean(t.text))]
    if not requests:
        return Query("", "")
    latest = requests[-1]
    context: list[str] = []
    if force_context or needs_context(latest):
        for earlier in reversed(requests[:-1]):
            context.append(earlier)
            if len(context) >= max_context or (not force_context and not needs_context(earlier)):
                break
    text = "；".join([latest, *context])
    return Query(text, latest, tuple(context))


def last_turn_query(turns: list[Turn]) -> Query:
    """Baseline for evals: the last customer turn as it is."""
    for t in reversed(turns):
        if t.role == "customer" and t.text.strip():
            return Query(t.text.strip(), t.text.strip())
    return Query("", "")
