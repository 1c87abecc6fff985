"""Emotion level 0-3 and escalation from Chinese and English anger and complaint cues."""

import re
from dataclasses import dataclass

from assist.suggest.intent import is_latin

# (pattern, weight). 3 = a formal complaint or legal threat, 2 = open anger, 1 = impatience.
CUES: list[tuple[str, int]] = [
    (r"12315|消协|消费者协会|工商局|市场监管|媒体曝光|曝光你们|报警|律师|起诉|法院|告你们", 3),
    (r"投诉|举报|差评|骗子|诈骗|欺诈|骗人|黑店|坑人|坑爹|无良|垃圾|什么破|破公司|恶心|气死|太过分|过分了|忍无可忍|受够了|滚", 2),
    (r"退钱|赔钱|赔偿|给个说法|要个说法|你们怎么回事|什么态度|态度太差|敷衍|踢皮球|推来推去|不负责|没人管|没人理|耍我", 2),
    (r"\b(?:scam|fraud|lawyer|sue|lawsuit|complain(?:t)?|ridiculous|unacceptable|worst|terrible|disgusting|useless|refund now)\b", 2),
    (r"到底|究竟|怎么还没|为什么还没|还不|多少次|说了多少遍|又是|一直没|几天了|等了.{0,4}天|太慢|着急|急死|马上|立刻|赶紧", 1),
]
_COMPILED = [(re.compile(p, re.IGNORECASE), w) for p, w in CUES]
_EXCLAIM = re.compile(r"[!！]{2,}|[?？]{3,}|[!！?？]{3,}")
_STILL_NOT = re.compile(r"还没")
# Angry faces and gestures; 🤬 and 🖕 are open anger, the others a sign of it.
ANGRY_EMOJI = {"🤬": 2, "🖕": 2, "😡": 1, "😠": 1, "👿": 1, "💢": 1, "😤": 1}
_EMOJI = re.compile("|".join(map(re.escape, ANGRY_EMOJI)))
_LATIN_WORD = re.compile(r"[A-Za-z]+")
SHOUT_MIN_WORDS = 3  # fewer capitalised words are a product name or a code (AIRBEAT, SKU), not shouting


@dataclass(frozen=True)
class Emotion:
    level: int  # 0 calm, 1 impatient, 2 upset, 3 angry / formal complaint
    escalate: bool
    cues: tuple[str, ...]


def message_cues(text: str) -> list[tuple[str, int]]:
    """Every cue found in one message, with its weight."""
    found = [(m.group(), w) for rx, w in _COMPILED for m in rx.finditer(text)]
    found += [(m.group(), 1) for m in _EXCLAIM.finditer(text)]
    found += [(m.group(), ANGRY_EMOJI[m.group()]) for m in _EMOJI.finditer(text)]
    shout = shouting(text)
    if shout:
        found.append((shout, 1))
    return found


def shouting(text: str) -> str | None:
    """The capitalised words when a mostly-Latin message is written in capitals (at least
    SHOUT_MIN_WORDS of them and half its words): one cue, however many words. Capitals in a Chinese
    message, or a few in an English one, are names and codes."""
    if not is_latin(text):
        return None
    words = _LATIN_WORD.findall(text)
    caps = [w for w in words if len(w) >= 2 and w.isupper()]
    if len(caps) >= SHOUT_MIN_WORDS and 2 * len(caps) >= len(words):
        return " ".join(caps)
    return None


def detect_emotion(customer_texts: list[str], intent_escalates: bool = False, threshold: int = 2) -> Emotion:
    """Level from the latest customer message, raised by anger earlier in the conversation and by
    the customer repeating "还没" across turns (asking again is a classic escalation sign)."""
    if not customer_texts:
        return Emotion(0, intent_escalates, ())
    latest = message_cues(customer_texts[-1])
    earlier = [c for text in customer_texts[:-1] for c in message_cues(text)]
    score = sum(w for _, w in latest)
    score += max((w for _, w in earlier), default=0) // 2  # anger lingers, at half strength
    cues = [c for c, _ in latest] + [c for c, w in earlier if w >= 2]
    still_not = sum(len(_STILL_NOT.findall(t)) for t in customer_texts)
    if still_not >= 2:
        score += 1
        cues.append(f"重复追问「还没」×{still_not}")
    level = 0 if score <= 0 else 1 if score == 1 else 2 if score <= 3 else 3
    if any(w == 3 for _, w in latest):
        level = 3
    return Emotion(level, level >= threshold or intent_escalates, tuple(dict.fromkeys(cues)))
