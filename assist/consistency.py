"""KB consistency: numbers that articles and templates of one intent state differently for the same fact.

Change the refund time in one article to "2 小时内" and another article and `tpl-refund-timing` still say
"1–3 个工作日": side by side in the sidebar, the agent cannot tell which is true. `find_conflicts` reads
every quantity (durations, amounts, percentages) with the words of its clause, and reports two
quantities of the same kind whose clauses say the same thing in the same words (the fact) but whose
values do not overlap. `assist kb check` prints them as warnings, with both places.
"""

import re
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from assist.index.lexical import CODE
from assist.kb import KB

# number or range (1-3, 1–3, 1～3, 1 到 3) + unit; 半小时 / 两天 style words are rare in KB prose and skipped
_NUM = r"\d+(?:\.\d+)?"
QUANTITY = re.compile(
    rf"(?P<lo>{_NUM})\s*(?:(?:-|–|—|~|～|至|到)\s*(?P<hi>{_NUM}))?\s*"
    r"(?P<unit>个工作日|工作日|个小时|小时|分钟|天|周|个月|年|元|块|%|％)"
)
# every unit as (kind, factor to the kind's base unit); calendar and working days are both days here
UNITS = {
    "分钟": ("duration", 1 / 60), "小时": ("duration", 1.0), "个小时": ("duration", 1.0),
    "天": ("duration", 24.0), "工作日": ("duration", 24.0), "个工作日": ("duration", 24.0),
    "周": ("duration", 168.0), "个月": ("duration", 720.0), "年": ("duration", 8760.0),
    "元": ("amount", 1.0), "块": ("amount", 1.0), "%": ("percent", 1.0), "％": ("percent", 1.0),
}
KEY_WORDS = 3  # a quantity's key: the content words right before it in its clause, at most this many
MIN_KEY_WORDS = 2  # one word (处理, 不满) names too many facts to tell them apart
# a clause ends at these; the words of one clause are what a number is about
CLAUSE = re.compile(r"[。；;，,！!？?\n：:（）()、]|\s[-*]\s")
# words that say when or how much, not what: shared by unrelated facts
GENERIC = frozenset(
    """内 以内 之内 以上 以下 之后 以后 后 前 起 超过 不超过 最多 最少 最低 最高 至少 约 大约 左右 每 每个 每次 单次 单笔
    时间 期间 小时 分钟 工作日 个工作日 天 周 个月 年 元 块 日 签收 收到 提交 申请 发起 完成 之日 自 按 计算 起算 通常 一般
    大部分 情况 即可 可以 需要 会 将 您 我们 已 为 订单""".split()
)


@dataclass(frozen=True)
class Mention:
    item: str  # article or template id
    path: str  # KB-relative file path
    line: int  # 1-based line in the file
    kind: str  # duration | amount | percent
    lo: float  # in the kind's base unit (hours, yuan, percent)
    hi: float
    text: str  # the quantity as written, e.g. "1–3 个工作日"
    words: frozenset[str]  # what the quantity is of: the content words before it in its clause
    codes: frozenset[str] = frozenset()  # product / SKU codes of the place (its title, heading and clause)
    after: frozenset[str] = frozenset()  # what happens within it: the content words after it (到账, 上门)


@dataclass(frozen=True)
class Conflict:
    first: Mention  # the place that disagrees with the others
    second: Mention  # a place stating the figure most places give
    shared: tuple[str, ...]  # the words both name the fact with
    also: tuple[Mention, ...] = ()  # more places agreeing with `second` (at most a few)
    more: int = 0  # and how many beyond those

    def message(self, root: Path) -> tuple[Path, int, str]:
        """Where and what to print: the disagreeing place, with the others in the message."""
        a = self.first
        places = ", ".join(f"{m.path}:{m.line} ({m.item})" for m in (self.second, *self.also))
        more = f" and {self.more} more place(s)" if self.more else ""
        return (root / a.path, a.line,
                f"warning: '{a.text}' here but '{self.second.text}' in {places}{more} for the same fact "
                f"({'、'.join(self.shared)})")


def _tokenizer():
    from assist.index.lexical import Tokenizer

    return Tokenizer()


def mentions(item_id: str, path: str, title: str, body: str, body_line: int, tokenize) -> list[Mention]:
    """Every quantity of a body, keyed by the content words before it in its clause (what the number is
    of: 支付宝/微信 in "支付宝/微信 1–3 个工作日"), else by its section heading's words."""
    out = []
    heading: frozenset[str] = frozenset()
    title_codes = frozenset(c.lower() for c in CODE.findall(title))
    heading_codes: frozenset[str] = frozenset()

    def content(text: str) -> frozenset[str]:
        return frozenset(w for w in tokenize(text) if len(w) > 1 and w not in GENERIC and not w.isdigit())

    def nearest(text: str) -> frozenset[str]:
        words = [w for w in tokenize(text) if len(w) > 1 and w not in GENERIC and not w.isdigit()]
        return frozenset(words[-KEY_WORDS:])

    for n, line in enumerate(body.splitlines()):
        if line.lstrip().startswith("#"):
            heading = content(line.lstrip("# "))  # headings name sections; their own numbers repeat the text
            heading_codes = frozenset(c.lower() for c in CODE.findall(line))
            continue
        clean = re.sub(r"\*\*|__|`|\{\{[^}]*\}\}", " ", line)
        bounds = [0, *(m.end() for m in CLAUSE.finditer(clean)), len(clean)]
        for start, end in zip(bounds, bounds[1:]):
            clause = clean[start:end]
            codes = title_codes | heading_codes | {c.lower() for c in CODE.findall(clause)}
            for m in QUANTITY.finditer(clause):
                kind, factor = UNITS[m.group("unit")]
                lo = float(m.group("lo")) * factor
                hi = float(m.group("hi")) * factor if m.group("hi") else lo
                key = nearest(QUANTITY.sub(" ", clause[: m.start()])) or heading
                after = content(QUANTITY.split(clause[m.end():])[0])
                out.append(Mention(item_id, path, body_line + n, kind, min(lo, hi), max(lo, hi),
                                   " ".join(m.group().split()), key, frozenset(codes), after))
    return out


def _same_fact(a: Mention, b: Mention) -> tuple[str, ...] | None:
    """The key words when two quantities are of the same thing: one key holds the other (the heading
    "支付宝 / 微信支付" holds "支付宝/微信"), and not about two
    different products (the places name different product codes, or only one names any)."""
    small, large = sorted((a.words, b.words), key=len)
    if len(small) < MIN_KEY_WORDS or not small <= large:
        return None
    if a.codes != b.codes:  # one product's figure, or a product's figure next to the general rule
        return None
    if a.after and b.after and a.after.isdisjoint(b.after):  # 24 小时内联系 is not 2 小时未上门
        return None
    return tuple(sorted(small))


def _disagree(a: Mention, b: Mention) -> bool:
    """Values that cannot both be true: ranges that do not overlap."""
    return a.kind == b.kind and (a.hi < b.lo or b.hi < a.lo)


def _subkeys(words: frozenset[str]):
    """The keys a mention is filed under: its own and each smaller one of at least MIN_KEY_WORDS words
    (a heading's "支付宝 / 微信支付" meets a clause's "支付宝/微信")."""
    ordered = sorted(words)
    for size in range(MIN_KEY_WORDS, len(ordered) + 1):
        yield from (frozenset(c) for c in combinations(ordered, size))


PLACES_SHOWN = 3  # places of the common figure named in one warning


def find_conflicts(kb: KB, tokenize=None) -> list[Conflict]:
    """Quantities in articles / templates sharing an intent that state the same fact with values that
    do not overlap. Each fact's most common figure is taken as the reference; every place that
    disagrees with it gets one warning naming a few places that state it (templates first: the reply
    an agent sends is where a wrong figure hurts most). An item's `distinct_facts` lists the ids whose
    figures are known to be for other cases (偏远地区 vs 普通地区 shipping): no conflict with those.
    Mentions are filed by key, so a large KB costs about as many comparisons as it has conflicts."""
    tokenize = tokenize or _tokenizer().tokenize
    items = [(a.id, a.path, a.title, a.body, a.body_line, set(a.intents)) for a in kb.published]
    items += [(t.id, t.path, t.title, t.body, _template_body_line(kb, t.path), set(t.intents)) for t in kb.templates]
    intents = {i: names for i, *_, names in items}
    templates = {t.id for t in kb.templates}
    distinct = {(x.id, y) for x in [*kb.published, *kb.templates] for y in x.distinct_facts}
    buckets: dict[tuple[str, frozenset[str]], list[Mention]] = {}
    for i, p, title, body, line, _ in items:
        for m in mentions(i, p, title, body, line, tokenize):
            if len(m.words) >= MIN_KEY_WORDS:
                for key in _subkeys(m.words):
                    buckets.setdefault((m.kind, key), []).append(m)

    def agree(a: Mention, b: Mention) -> tuple[str, ...] | None:
        if a.item == b.item or not intents[a.item] & intents[b.item] or (a.item, b.item) in distinct or (b.item, a.item) in distinct:
            return None
        return _same_fact(a, b) if _disagree(a, b) else None

    conflicts, reported = [], set()
    for _, group in sorted(buckets.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        if len({m.item for m in group}) < 2:
            continue
        votes = Counter((m.lo, m.hi) for m in {(m.item, m.lo, m.hi): m for m in group}.values())
        if len(votes) < 2:
            continue
        reference = max(votes, key=lambda v: (votes[v], -group.index(next(m for m in group if (m.lo, m.hi) == v))))
        refs = sorted((m for m in group if (m.lo, m.hi) == reference), key=lambda m: m.item not in templates)
        for m in group:
            place = (m.path, m.line, m.text)
            if (m.lo, m.hi) == reference or place in reported:
                continue
            partners, shared = [], None
            for r in refs:
                found = agree(m, r)
                if found:
                    shared = shared or found
                    partners.append(r)
            if partners:
                reported.add(place)
                conflicts.append(Conflict(m, partners[0], shared, tuple(partners[1:PLACES_SHOWN]), max(0, len(partners) - PLACES_SHOWN)))
    return sorted(conflicts, key=lambda c: (c.first.path, c.first.line))


def _template_body_line(kb: KB, rel: str) -> int:
    """Templates do not record where their body starts: after the closing '---' of the front matter."""
    try:
        lines = (Path(kb.root) / rel).read_text(encoding="utf-8").splitlines()
    except OSError:
        return 1
    closing = [i for i, line in enumerate(lines) if line.strip() == "---"]
    return closing[1] + 2 if len(closing) > 1 else 1
