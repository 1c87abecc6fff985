"""What to do with the conversation besides answering: clarify the intent, route it, hand it off.

- `clarify_for`: when the intent model is unsure (low confidence, or the two best intents close),
  a question the agent can send, with the intents it tells apart.
- `route_for`: the queue (skill group) that owns the request and its priority; escalating intents
  and upset customers go to the supervisor queue, VIP customers and escalations rank higher.
- `handoff_note`: for a transfer, a short redacted note for the next agent — intent, entities found,
  emotion cues, and what has already been suggested.
"""

from dataclasses import dataclass

from assist.config import SuggestSettings
from assist.kb import OUT_OF_SCOPE, Intent
from assist.redact import redact
from assist.suggest.emotion import Emotion
from assist.suggest.intent import IntentResult

VIP_TIERS = ("vip", "svip")
CLARIFY_OPTION_MIN = 0.1  # an alternative below this probability is not offered as an option
HANDOFF_ENTITIES = (("order_id", "订单号"), ("sku", "SKU"), ("tracking_no", "运单号"), ("refund_amount", "金额"))


@dataclass(frozen=True)
class ClarifyOption:
    intent: str
    label: str


@dataclass(frozen=True)
class Clarify:
    question: str
    options: tuple[ClarifyOption, ...]


@dataclass(frozen=True)
class Route:
    queue: str
    priority: int  # 1 = most urgent
    reason: str
    transfer: bool  # the request must go to the supervisor queue


@dataclass(frozen=True)
class Handoff:
    note: str


def _join_labels(labels: list[str], english: bool) -> str:
    if english:
        return ", ".join(labels[:-1]) + f" or {labels[-1]}"
    quoted = [f"「{label}」" for label in labels]
    return "、".join(quoted[:-1]) + f"还是{quoted[-1]}"


def clarify_for(intent: IntentResult, intents: dict[str, Intent], settings: SuggestSettings,
                english: bool = False) -> Clarify | None:
    """A clarifying question when the decision is unsure; None when it is clear or out of scope."""
    if intent.name == OUT_OF_SCOPE or not intent.alternatives:
        return None
    runner_up = intent.alternatives[0]
    unsure = intent.confidence < settings.clarify_below or intent.probability - runner_up.confidence < settings.clarify_margin
    if not unsure:
        return None
    others = [a for a in intent.alternatives[:2] if a.confidence >= CLARIFY_OPTION_MIN] or [runner_up]
    options = (ClarifyOption(intent.name, intent.label), *(ClarifyOption(a.name, a.label) for a in others))
    declared = intents.get(intent.name)
    if declared is not None and declared.clarify:
        question = declared.clarify
    elif english:
        question = f"Just to make sure I help with the right thing: is this about {_join_labels([o.label for o in options], True)}?"
    else:
        question = f"为了更准确地帮您处理，请问您是想咨询{_join_labels([o.label for o in options], False)}呢？"
    return Clarify(question, options)


def route_for(intent: IntentResult, emotion: Emotion, customer: dict, intents: dict[str, Intent],
              settings: SuggestSettings) -> Route:
    declared = intents.get(intent.name)
    queue = (declared.route if declared is not None and declared.route else settings.default_queue)
    priority = declared.priority if declared is not None else 3
    reasons = [f"意图：{intent.label}" if intent.name != OUT_OF_SCOPE else "不在知识库范围内"]
    escalating = bool(intent.escalate or emotion.escalate)
    if escalating:
        queue, priority = settings.supervisor_queue, 1
        if intent.escalate:
            reasons.append("该意图需升级处理")
        if emotion.escalate:
            reasons.append(f"客户情绪等级 {emotion.level}")
    if str(customer.get("tier", "")).lower() in VIP_TIERS:
        priority = max(1, priority - 1)
        reasons.append(f"{str(customer['tier']).upper()} 客户")
    return Route(queue, max(1, min(5, priority)), "；".join(reasons), escalating)


def handoff_note(route: Route, intent: IntentResult, emotion: Emotion, entities: dict[str, str],
                 customer: dict, answer_titles: list[str], template_titles: list[str], last_customer_turn: str) -> Handoff:
    """The note that goes with a transfer (redacted: phone numbers, e-mails, addresses, cards masked)."""
    confidence = "高" if intent.confidence >= 0.8 else "中" if intent.confidence >= 0.5 else "低"
    lines = [f"【转接】{route.queue} · 优先级 P{route.priority}", f"原因：{route.reason}",
             f"意图：{intent.label}（把握{confidence}）"]
    tier = str(customer.get("tier") or "")
    if tier:
        lines.append(f"客户等级：{tier.upper()}")
    found = [f"{label} {entities[key]}" for key, label in HANDOFF_ENTITIES if entities.get(key)]
    if found:
        lines.append("已识别：" + "；".join(found))
    if emotion.level:
        lines.append(f"情绪：等级 {emotion.level}" + (f"（{'、'.join(emotion.cues[:5])}）" if emotion.cues else ""))
    if answer_titles:
        lines.append("已推荐知识：" + "；".join(answer_titles[:3]))
    if template_titles:
        lines.append("已推荐模板：" + "；".join(template_titles[:3]))
    if last_customer_turn.strip():
        said = last_customer_turn.strip()
        lines.append("客户原话：" + (said if len(said) <= 120 else said[:119] + "…"))
    return Handoff(redact("\n".join(lines)))
