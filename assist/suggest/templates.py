"""Reply templates: entities from the conversation, sandboxed strict rendering, missing variables."""

import re
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment

from assist.errors import TemplateError
from assist.kb import ReplyTemplate

# Patterns for what customers paste into chats. Order numbers and SKU codes are kept whole.
ENTITY_PATTERNS = {
    "order_id": re.compile(r"(?<![A-Za-z0-9])DD\d{10,}(?!\d)", re.IGNORECASE),
    "tracking_no": re.compile(r"(?<![A-Za-z0-9])(?:SF|YT|ZTO|JD|YD|STO|EMS|JT)\d{9,15}(?!\d)", re.IGNORECASE),
    "sku": re.compile(r"(?<![A-Za-z0-9])SKU-\d{3,}(?!\d)", re.IGNORECASE),
    "phone": re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    "amount": re.compile(r"(?:¥|￥)\s*(\d+(?:\.\d{1,2})?)|(\d+(?:\.\d{1,2})?)\s*(?:元|块钱|块|rmb|RMB)"),
}

# Per-customer identifiers never identify an article (SKU codes do), so queries leave them out.
IDENTIFIERS = re.compile("|".join(ENTITY_PATTERNS[k].pattern for k in ("order_id", "tracking_no", "phone")), re.IGNORECASE)

# What a conversation says about the order's state, and the variables that only exist past that state:
# an order that has not shipped has no tracking number or carrier yet.
NOT_SHIPPED = re.compile(
    r"(?:还|都|仍|一直|至今)?(?:没|没有|未)(?:有)?(?:发货|发出|寄出|出库)|待发货|"
    r"not (?:been |yet )?(?:shipped|dispatched|sent)|hasn'?t (?:been )?(?:shipped|dispatched)|yet to ship",
    re.IGNORECASE,
)
SHIPPED_ONLY = ("tracking_no", "carrier")


def contradicts_state(template: ReplyTemplate, customer_texts: list[str], values: dict) -> bool:
    """The template needs something the conversation says cannot exist yet (a tracking number for an
    order that has not shipped) and the agent does not have it either: such a reply ranks last."""
    needs = {v.name for v in template.variables if v.required} & set(SHIPPED_ONLY)
    if not needs or all(values.get(n) for n in needs):
        return False
    return any(NOT_SHIPPED.search(text) for text in customer_texts)


def other_product(template: ReplyTemplate, customer_texts: list[str]) -> bool:
    """The template is written for particular products (its `products`) and the customer names none
    of them: robot-vacuum Wi-Fi steps are no reply about an air fryer."""
    if not template.products:
        return False
    said = " ".join(customer_texts).lower()
    return not any(p.lower() in said for p in template.products)

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class MissingVariable:
    """A required variable nothing filled: `label` is what its 【...】 placeholder shows the agent."""

    name: str
    label: str


@dataclass(frozen=True)
class RenderedTemplate:
    template_id: str
    title: str
    text: str
    missing: tuple[MissingVariable, ...]
    score: float
    tier: str | None = None
    purpose: str = "reply"  # "reply": answers the request; "escalation": apology / hand-off for an upset customer

    @property
    def missing_variables(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.missing)


def extract_entities(texts: list[str]) -> dict[str, str]:
    """Values found in the customer's messages, the latest mention winning."""
    found: dict[str, str] = {}
    for text in texts:
        for name, rx in ENTITY_PATTERNS.items():
            matches = list(rx.finditer(text))
            if not matches:
                continue
            m = matches[-1]
            value = next((g for g in m.groups() if g), m.group()) if m.groups() else m.group()
            found[name] = value.upper() if name in ("order_id", "tracking_no", "sku") else value
    if "phone" in found:
        found["phone_tail"] = found["phone"][-4:]
    if "amount" in found:
        found.setdefault("refund_amount", found["amount"])
    return found


@lru_cache(maxsize=1024)
def _compiled(body: str):
    """Compiling a template costs more than rendering it; the KB's templates are few and reused on every request."""
    return _ENV.from_string(body)


def render(template: ReplyTemplate, values: dict[str, str]) -> tuple[str, tuple[MissingVariable, ...]]:
    """Render a template with what is known.

    A required variable with no value is shown as 【description】 for the agent to fill and listed as
    missing; an optional one falls back to its default, else to an empty string.
    """
    context, missing = {}, []
    for var in template.variables:
        value = values.get(var.name)
        if value in (None, ""):
            value = var.default
        if value in (None, ""):
            if var.required:
                label = var.description or var.name
                missing.append(MissingVariable(var.name, label))
                value = f"【{label}】"
            else:
                value = ""
        context[var.name] = value
    try:
        text = _compiled(template.body).render(context)
    except JinjaTemplateError as exc:
        raise TemplateError(f"template {template.id} cannot be rendered: {exc}") from None
    return text, tuple(missing)
