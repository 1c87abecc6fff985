"""Request and response models of the HTTP API (Pydantic lives here, at the edge, and nowhere else).

Limits that come from Settings (turns per conversation, characters per turn) are checked in the routes
and written into the OpenAPI document by `api.main`; fields carrying them are marked `x-limit`.
"""

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, StringConstraints, WithJsonSchema

from assist.feedback import EVENTS, KINDS
from assist.suggest.query import ROLES


def _encodable(value: str) -> str:
    # JSON escapes can smuggle lone surrogates in; they cannot be stored or sent back as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def _integral(value):
    # JSON Schema counts 3.0 as an integer; strict mode would not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Text = Annotated[str, AfterValidator(_encodable)]
FeedbackEventName = Literal[EVENTS]
SuggestionKind = Literal[KINDS]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
Role = Literal[ROLES]
MAX_CUSTOMER_TEXT = 200
MAX_CUSTOMER_NUMBER = 10**15


def _customer_value(value):
    # One validator with one plain message, not a union whose every member reports its own failure.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_CUSTOMER_TEXT:
            raise ValueError(f"at most {MAX_CUSTOMER_TEXT} characters, got {len(value)}")
        return _encodable(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or abs(value) > MAX_CUSTOMER_NUMBER:
            raise ValueError(f"a number between -{MAX_CUSTOMER_NUMBER:.0e} and {MAX_CUSTOMER_NUMBER:.0e}")
        return value
    raise ValueError("must be text, a number, true / false or null")


CustomerValue = Annotated[
    object,
    PlainValidator(_customer_value),
    WithJsonSchema({"anyOf": [
        {"type": "string", "maxLength": MAX_CUSTOMER_TEXT},
        {"type": "number", "minimum": -MAX_CUSTOMER_NUMBER, "maximum": MAX_CUSTOMER_NUMBER},
        {"type": "boolean"},
        {"type": "null"},
    ]}),
]


MAX_TOP_K = 20


class Strict(BaseModel):
    """Request models: no type coercion (false is not 0, "12" is not 12), no NaN or infinity."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class Turn(Strict):
    role: Role = Field(description="who spoke: customer, agent or system")
    text: Text = Field(description="what was said", json_schema_extra={"x-limit": "max_turn_chars"})
    # Not parsed: the pipeline does not use it, and a strict parse would reject sidebars' many clock formats.
    ts: Annotated[str, StringConstraints(max_length=64)] | Annotated[float, Field(ge=0, le=1e13)] | None = Field(
        None, description="when it was said (ISO 8601 text or Unix time); informational"
    )


Conversation = Annotated[
    list[Turn], Field(min_length=1, description="the conversation so far, oldest turn first", json_schema_extra={"x-limit": "max_turns"})
]

# --- errors ------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    field: str = Field(description="where in the request, e.g. conversation.2.role")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. unauthorized, too_many_turns")
    message: str = Field(description="what went wrong, for a person")
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "unauthorized", "message": "missing API key: send it in the X-API-Key header"}}]}
    )


# --- suggest -----------------------------------------------------------------------------------------

SUGGEST_EXAMPLE = {
    "conversation": [
        {"role": "customer", "text": "你好，我上周买的耳机退货了，订单 DD202611230001"},
        {"role": "agent", "text": "您好，请问有什么可以帮您？"},
        {"role": "customer", "text": "退款多久能到账？我是用银行卡付的"},
    ],
    "customer": {"name": "李先生", "tier": "VIP", "order_id": "DD202611230001"},
    "top_k": 3,
}


class SuggestRequest(Strict):
    conversation: Conversation
    customer: Annotated[
        dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], CustomerValue] | None,
        AfterValidator(lambda value: value or {}),
    ] = Field(
        default_factory=dict, max_length=30,
        description="what the agent knows about the customer (name, tier such as VIP, order_id, ...); fills template "
        "variables; null is the same as {}",
    )
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K), BeforeValidator(_integral)] | None = Field(
        None, description="answers to return (default: the configured number)"
    )
    session_id: Ident | None = Field(None, description="the conversation's id (the sidebar's): the suggestion log and erasure group by it")
    model_config = ConfigDict(json_schema_extra={"examples": [SUGGEST_EXAMPLE]})


class IntentScoreOut(BaseModel):
    name: str
    label: str
    confidence: float


class IntentOut(IntentScoreOut):
    confidence: float = Field(description="calibrated: the probability that this intent is right (0.8 = right about 8 times in 10)")
    escalate: bool = Field(description="the intent itself calls for escalation (e.g. a complaint)")
    alternatives: list[IntentScoreOut] = Field(description="the next most likely intents with their probabilities")


class ClarifyOptionOut(BaseModel):
    intent: str
    label: str


class ClarifyOut(BaseModel):
    question: str = Field(description="a question the agent can send to tell the options apart: the intent's own "
                          "`clarify` from intents.yaml, else one built from the labels")
    options: list[ClarifyOptionOut] = Field(description="the intents the question separates, most likely first")


class RouteOut(BaseModel):
    queue: str = Field(description="skill group / queue that owns the request: the intent's `route`, the default "
                       "queue, or the supervisor queue when escalating")
    priority: int = Field(ge=1, le=5, description="1 = most urgent: the intent's priority, raised for VIP customers, 1 when escalating")
    reason: str = Field(description="why this queue and priority, for the agent")
    transfer: bool = Field(description="true when the conversation must go to the supervisor queue (then `handoff` is set)")


class HandoffOut(BaseModel):
    note: str = Field(description="redacted note for the next agent: intent, entities found, emotion cues, "
                      "articles and templates already suggested, the customer's last words")


class EmotionOut(BaseModel):
    level: int = Field(description="0 calm, 1 impatient, 2 upset, 3 angry or formal complaint")
    escalate: bool
    cues: list[str] = Field(description="the words that gave the emotion away, e.g. 投诉, 12315")


class AnswerOut(BaseModel):
    article_id: str
    title: str
    heading_path: list[str]
    snippet: str
    score: float
    matched_terms: list[str]
    chunk_id: str
    matched_question: str | None = Field(None, description="the KB's FAQ question (standard or similar) that matched, when one did")
    direct: bool = Field(False, description="the customer asked that FAQ question word for word: a direct answer")


class MissingVariableOut(BaseModel):
    name: str
    label: str = Field(description="what the 【...】 placeholder for it shows: the variable's description, else its name")


class TemplateOut(BaseModel):
    template_id: str
    title: str
    text: str = Field(description="the reply, filled with the customer's values; 【...】 marks what is missing")
    missing_variables: list[str] = Field(description="names of the required variables still missing")
    missing: list[MissingVariableOut] = Field(description="the same variables, each with its label, in the same order")
    purpose: Literal["reply", "escalation"] = Field(
        "reply", description="reply: answers the request; escalation: apology / hand-off for an upset customer "
        "(the only kind offered when the knowledge base has no good answer)"
    )
    score: float
    tier: str | None = None


class SuggestResponse(BaseModel):
    intent: IntentOut
    emotion: EmotionOut
    answers: list[AnswerOut]
    templates: list[TemplateOut]
    abstained: bool = Field(description="true when the knowledge base has no good answer")
    clarify: ClarifyOut | None = Field(None, description="set when the intent is unsure: ask before guessing")
    route: RouteOut
    handoff: HandoffOut | None = Field(None, description="set for transfers (route.transfer)")
    top_similarity: float | None = Field(None, description="best dense similarity of any article section")
    query: str = Field(description="the retrieval query built from the conversation")
    index_version: str
    timings_ms: dict[str, float]
    request_id: str = Field(description="this response's id in the suggestion log: send it back with feedback")
    arm: str | None = Field(None, description="the experiment arm of the session, when an experiment runs (ASSIST_EXPERIMENTS)")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "intent": {"name": "refund_status", "label": "退款进度", "confidence": 0.91, "escalate": False,
                               "alternatives": [{"name": "return_policy", "label": "退货政策", "confidence": 0.06}]},
                    "emotion": {"level": 0, "escalate": False, "cues": []},
                    "answers": [{"article_id": "refund-timing", "title": "退款到账时间", "heading_path": ["退款到账时间", "银行卡"],
                                 "snippet": "储蓄卡退款需要 3 到 7 个工作日，具体以银行入账时间为准。", "score": 0.87,
                                 "matched_terms": ["退款", "到账", "银行卡"], "chunk_id": "3f9a1c2b7d10"}],
                    "templates": [{"template_id": "tpl-refund-timing", "title": "退款到账时间答复",
                                   "text": "李先生，您的订单 DD202611230001 的退款已经审核通过……", "missing_variables": [], "missing": [],
                                   "score": 0.82, "tier": None}],
                    "abstained": False,
                    "clarify": {"question": "请问您的退货已经寄回并被仓库签收了吗？",
                                "options": [{"intent": "refund_status", "label": "退款进度"},
                                            {"intent": "return_request", "label": "退货申请"}]},
                    "route": {"queue": "after_sales", "priority": 2, "reason": "意图：退款进度", "transfer": False},
                    "handoff": None,
                    "top_similarity": 0.86,
                    "query": "退款多久能到账？我是用银行卡付的",
                    "index_version": "20261123-134538-173be5",
                    "timings_ms": {"query": 0.1, "encode": 4.2, "intent": 0.3, "emotion": 0.1, "retrieve": 1.5, "templates": 0.8, "total": 7.0},
                }
            ]
        }
    )


# --- feedback ----------------------------------------------------------------------------------------


class FeedbackRequest(Strict):
    event: FeedbackEventName = Field(description="what the agent did with the suggestion")
    suggestion_id: Ident = Field(description="the article or template id")
    kind: SuggestionKind
    intent: Ident | None = Field(None, description="the detected intent shown with the suggestion")
    index_version: Ident | None = None
    latency_ms: float | None = Field(None, ge=0, le=3_600_000, description="time from suggestion shown to this action")
    session_id: Ident | None = Field(None, description="the sidebar's conversation id, to group events")
    request_id: Ident | None = Field(None, description="the `request_id` of the suggest response the item was shown in")
    arm: Ident | None = Field(None, description="the suggest response's experiment `arm`")
    event_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = Field(
        None, description="your idempotency key for this event (8-64 of A-Z a-z 0-9 _ -): a retried POST with the same key "
        "is stored once and answered with the first row")
    conversation: Conversation | None = Field(None, description="the conversation at that moment; stored with personal data redacted")
    text: Annotated[Text, StringConstraints(max_length=8000)] | None = Field(
        None, description="free text, e.g. the reply as the agent edited it; stored with personal data redacted"
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": "edited",
                    "suggestion_id": "tpl-refund-timing",
                    "kind": "template",
                    "intent": "refund_status",
                    "index_version": "20261123-134538-173be5",
                    "latency_ms": 5400,
                    "session_id": "conv-20261123-0001",
                    "conversation": [{"role": "customer", "text": "退款多久到账？我手机 13812345678"}],
                    "text": "李先生您好，订单 DD202611230001 的退款已原路退回银行卡，3 到 7 个工作日到账。",
                }
            ]
        }
    )


class FeedbackCreated(BaseModel):
    id: int
    event: str
    created_at: str
    duplicate: bool = Field(False, description="true when this event_id was stored before: nothing new was written")


class StoredTurn(BaseModel):
    role: str
    text: str


class FeedbackEventOut(BaseModel):
    id: int
    created_at: str
    event: str
    suggestion_id: str
    kind: str
    intent: str | None
    index_version: str | None
    latency_ms: float | None
    session_id: str | None
    conversation: list[StoredTurn] | None
    text: str | None


class FeedbackExport(BaseModel):
    events: list[FeedbackEventOut]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null at the end")


# --- knowledge base ----------------------------------------------------------------------------------


class ArticleOut(BaseModel):
    id: str
    title: str
    category: str
    intents: list[str]
    tags: list[str]
    status: str
    updated: str | None
    body: str = Field(description="the article in Markdown")
    path: str = Field(description="file path inside the KB folder")
    index_version: str


class VariableOut(BaseModel):
    name: str
    description: str
    required: bool
    default: str | int | float | bool | None = None


class TemplateDetailOut(BaseModel):
    id: str
    title: str
    intents: list[str]
    variables: list[VariableOut]
    body: str = Field(description="the template source with {{ variable }} placeholders")
    tier: str | None = None
    path: str
    index_version: str


class IntentInfo(BaseModel):
    name: str
    label: str
    description: str
    examples: list[str]
    keywords: list[str]
    escalate: bool
    priority: int | None = None
    clarify: str = Field("", description="the question that tells this intent from its neighbours (\"\" = a generic one)")
    route: str = Field("", description="the queue that handles it (\"\" = the default queue)")


class IntentsOut(BaseModel):
    index_version: str
    intents: list[IntentInfo]


# --- admin and health --------------------------------------------------------------------------------


class ReloadResponse(BaseModel):
    previous: str | None = Field(description="the version served before (null when none was loaded)")
    current: str = Field(description="the version served now")
    changed: bool
    seconds: float
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"previous": "20261123-134538-173be5", "current": "20261124-090102-a81c3e", "changed": True, "seconds": 0.42}]}
    )


class LimitsResponse(BaseModel):
    max_turns: int = Field(description="most turns in one conversation (ASSIST_MAX_TURNS); send the latest ones")
    max_turn_chars: int = Field(description="most characters in one turn (ASSIST_MAX_TURN_CHARS)")
    max_body_bytes: int = Field(description="largest request body accepted (ASSIST_MAX_BODY_BYTES)")
    max_top_k: int = Field(description="largest top_k a suggest request may ask for")
    default_top_k: int = Field(description="answers returned when top_k is not given (ASSIST_SUGGEST__ANSWERS)")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    index_version: str
    serving_since: str = Field(description="when this process began serving the version (UTC, ISO 8601)")


# --- public help centre (customers: no key) ------------------------------------------------------------

MAX_HELP_COMMENT = 500


class PublicCategoryOut(BaseModel):
    name: str
    count: int = Field(description="published public items in it")


class PublicCategoriesOut(BaseModel):
    categories: list[PublicCategoryOut] = Field(description="categories of the items customers may see, the largest first")
    contact_url: str = Field(description="the help page's 'contact us' link (it records the click, then redirects)")
    max_query_chars: int = Field(description="longest search accepted")


class PublicHitOut(BaseModel):
    id: str
    title: str
    category: str
    snippet: str = Field(description="the matching part of the article (its public sections only)")
    heading_path: list[str]
    matched_terms: list[str] = Field(description="the search's words found in it, to highlight")
    matched_question: str | None = Field(None, description="the FAQ question (standard or similar) that matched, when one did")


class PublicSearchOut(BaseModel):
    query: str
    category: str | None
    abstained: bool = Field(description="true when the help centre has no good answer: offer `contact_url` instead")
    results: list[PublicHitOut]
    contact_url: str


class PublicRelatedOut(BaseModel):
    id: str
    title: str


class PublicArticleOut(BaseModel):
    id: str
    title: str
    category: str
    updated: str
    html: str = Field(description="the article's public sections rendered to HTML (raw HTML in the KB is escaped, images point to /v1/public/assets/)")
    related: list[PublicRelatedOut] = Field(description="other items of its category")


class PublicFeedbackRequest(Strict):
    article_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    helpful: bool = Field(description="the answer to 'was this helpful?'")
    comment: Annotated[Text, StringConstraints(max_length=MAX_HELP_COMMENT)] | None = Field(
        None, description="optional words from the customer (stored redacted)")
    query: Annotated[Text, StringConstraints(max_length=2000)] | None = Field(None, description="the search that led to the article")


class PublicFeedbackOut(BaseModel):
    recorded: bool


# --- data: retention and erasure --------------------------------------------------------------------


class EraseRequest(Strict):
    session_id: Ident = Field(None, description="erase this conversation session's rows")
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        None, description="erase this customer's rows (the `id` / `customer_id` sent in suggest requests' customer)")
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["session_id"]}, {"required": ["customer_id"]}]})


class EraseResponse(BaseModel):
    erased: dict[str, int] = Field(description="rows deleted per table")


class AuditEntryOut(BaseModel):
    id: int
    created_at: str
    actor: str = Field(description="the caller: address and admin-token fingerprint, or the CLI user and host")
    action: str
    detail: dict


class AuditLog(BaseModel):
    entries: list[AuditEntryOut] = Field(description="newest first")


Span = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,3}[dhm]$")]


class ReviewIgnoreRequest(Strict):
    gap_id: Annotated[str, StringConstraints(pattern=r"^gap-[0-9a-f]{8}$")]
    since: Span = Field("7d", description="the review period the gap was found in (7d, 24h, 30m)")


class ReviewApplyRequest(ReviewIgnoreRequest):
    add_to: Ident = Field(description="the article or FAQ entry that should answer the gap's requests")


class ReviewApplyOut(BaseModel):
    gap_id: str
    action: Literal["added", "ignored"]
    article_id: str | None
    questions_added: list[str]
