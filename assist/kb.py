"""Load and validate a knowledge base folder: articles, reply templates and intents (DESIGN §2)."""

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from assist.errors import KBValidationError

OUT_OF_SCOPE = "out_of_scope"
STATUSES = ("published", "draft")
AUDIENCES = ("internal", "public")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    category: str
    intents: tuple[str, ...]
    tags: tuple[str, ...]
    status: str
    updated: str
    body: str
    path: str
    body_line: int  # 1-based line of the body's first line in the file
    distinct_facts: tuple[str, ...] = ()  # ids whose different figures are for other cases (no kb check warning)
    questions: tuple[str, ...] = ()  # FAQ: the standard question (标准问) first, then similar ones (相似问)
    negative_keywords: tuple[str, ...] = ()  # a request containing one of these is not about this item
    audience: str = "internal"  # internal (agents only) | public (the customer help centre may show it)
    source: str = "article"  # article (articles/**/*.md) | faq (a standalone entry, faq/*.yaml)
    questions_line: int = 0  # where the questions are written (kb check points there)
    assets: tuple[str, ...] = ()  # images the body shows, as paths under the KB's assets/ folder


@dataclass(frozen=True)
class Variable:
    name: str
    description: str = ""
    required: bool = False
    default: str | None = None


@dataclass(frozen=True)
class ReplyTemplate:
    id: str
    title: str
    intents: tuple[str, ...]
    variables: tuple[Variable, ...]
    body: str
    path: str
    tier: str | None = None
    # Products the reply is written for (e.g. 扫地机器人 Wi-Fi steps): empty = any product. A reply for
    # other products ranks below the rest when the conversation names none of these.
    products: tuple[str, ...] = ()
    distinct_facts: tuple[str, ...] = ()  # as for articles


@dataclass(frozen=True)
class Intent:
    name: str
    label: str
    description: str = ""
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    escalate: bool = False
    priority: int = 3
    clarify: str = ""  # the question to ask when the customer may mean this intent or another
    route: str = ""  # skill group / queue that handles it ("" = the default queue)


@dataclass(frozen=True)
class KB:
    root: str
    articles: tuple[Article, ...]
    templates: tuple[ReplyTemplate, ...]
    intents: tuple[Intent, ...]
    content_hash: str = field(default="")
    out_of_scope_examples: tuple[str, ...] = ()  # intents.yaml: requests this team does not handle
    builtin_out_of_scope: bool = True  # also learn the package's generic out-of-scope set
    synonyms: tuple[tuple[str, ...], ...] = ()  # synonyms.yaml: groups of words one request may use for another

    @property
    def published(self) -> tuple[Article, ...]:
        return tuple(a for a in self.articles if a.status == "published")

    def to_snapshot(self) -> dict:
        """Plain JSON of what an index version serves: published articles, templates, intents."""
        return {
            "root": self.root,
            "content_hash": self.content_hash,
            "articles": [dataclasses.asdict(a) for a in self.published],
            "templates": [dataclasses.asdict(t) for t in self.templates],
            "intents": [dataclasses.asdict(i) for i in self.intents],
            "out_of_scope_examples": list(self.out_of_scope_examples),
            "builtin_out_of_scope": self.builtin_out_of_scope,
            "synonyms": [list(g) for g in self.synonyms],
        }

    @classmethod
    def from_snapshot(cls, data: dict) -> "KB":
        """The KB of an index version's kb.json (the inverse of `to_snapshot`)."""
        return cls(
            root=str(data.get("root") or ""),
            articles=tuple(_from_dict(Article, a) for a in data.get("articles", ())),
            templates=tuple(
                _from_dict(ReplyTemplate, {**t, "variables": tuple(_from_dict(Variable, v) for v in t.get("variables", ()))})
                for t in data.get("templates", ())
            ),
            intents=tuple(_from_dict(Intent, i) for i in data.get("intents", ())),
            content_hash=str(data.get("content_hash") or ""),
            out_of_scope_examples=tuple(data.get("out_of_scope_examples", ())),
            builtin_out_of_scope=bool(data.get("builtin_out_of_scope", True)),
            synonyms=tuple(tuple(g) for g in data.get("synonyms", ())),
        )


def _from_dict(cls, row: dict):
    """A frozen dataclass from its asdict() form: lists back to tuples, unknown keys ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items() if k in names})


# --- parsing -------------------------------------------------------------------------------------

_FENCE = re.compile(r"^---\s*$")


class _Doc:
    """A Markdown file split into front matter (with the line of each key) and body."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = path
        self.data: dict = {}
        self.key_lines: dict[str, int] = {}
        self.body = ""
        self.body_line = 1
        self.ok = False
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(path, 1, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"))
            return
        lines = text.splitlines()
        if not lines or not _FENCE.match(lines[0]):
            problems.append(Problem(path, 1, "missing YAML front matter (the file must start with '---')"))
            return
        end = next((i for i in range(1, len(lines)) if _FENCE.match(lines[i])), None)
        if end is None:
            problems.append(Problem(path, 1, "front matter is not closed by a '---' line"))
            return
        self.data, self.key_lines = _parse_yaml_mapping("\n".join(lines[1:end]), path, 2, problems)
        if self.data is None:
            self.data = {}
            return
        self.body = "\n".join(lines[end + 1 :]).strip("\n")
        self.body_line = end + 2 + _leading_blank_lines(lines[end + 1 :])
        self.ok = True

    def line(self, key: str) -> int:
        return self.key_lines.get(key, 1)


def _leading_blank_lines(lines: list[str]) -> int:
    n = 0
    for line in lines:
        if line.strip():
            break
        n += 1
    return n


def _parse_yaml_mapping(text: str, path: Path, first_line: int, problems: list[Problem]):
    """Parse a YAML mapping; return (data, {key: line}) or (None, {}) after recording the problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + (mark.line if mark else 0)
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(path, line, f"bad YAML: {reason}"))
        return None, {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(path, first_line, "front matter must be a YAML mapping (key: value lines)"))
        return None, {}
    key_lines = {}
    if node is not None:
        for key_node, _ in node.value:
            key_lines[str(key_node.value)] = first_line + key_node.start_mark.line
    return data, key_lines


def _str_list(doc: _Doc, key: str, problems: list[Problem]) -> tuple[str, ...]:
    value = doc.data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        problems.append(Problem(doc.path, doc.line(key), f"'{key}' must be a list of strings"))
        return ()
    return tuple(str(v) for v in value)


def _required_str(doc: _Doc, key: str, problems: list[Problem]) -> str:
    value = doc.data.get(key)
    if value is None or not str(value).strip():
        problems.append(Problem(doc.path, doc.line(key), f"missing required field '{key}'"))
        return ""
    return str(value).strip()


def _load_article(path: Path, rel: str, problems: list[Problem]) -> Article | None:
    doc = _Doc(path, problems)
    if not doc.ok:
        return None
    article_id = _required_str(doc, "id", problems)
    title = _required_str(doc, "title", problems)
    status = _status(doc, problems)
    if not doc.body.strip():
        problems.append(Problem(path, doc.body_line, "the article body is empty"))
    if not article_id or not title:
        return None
    audience = _audience(doc, problems)
    assets = check_body(path, doc.body, doc.body_line, audience, problems)
    return Article(
        id=article_id,
        title=title,
        category=str(doc.data.get("category") or ""),
        intents=_str_list(doc, "intents", problems),
        tags=_str_list(doc, "tags", problems),
        status=status,
        updated=str(doc.data.get("updated") or ""),
        body=doc.body,
        path=rel,
        body_line=doc.body_line,
        distinct_facts=_str_list(doc, "distinct_facts", problems),
        questions=tuple(q.strip() for q in _str_list(doc, "questions", problems) if q.strip()),
        negative_keywords=_str_list(doc, "negative_keywords", problems),
        audience=audience,
        questions_line=doc.line("questions"),
        assets=assets,
    )


def _status(doc, problems: list[Problem]) -> str:
    status = str(doc.data.get("status", "published"))
    if status not in STATUSES:
        problems.append(Problem(doc.path, doc.line("status"), f"status must be one of {', '.join(STATUSES)}, not '{status}'"))
    return status


def _audience(doc, problems: list[Problem]) -> str:
    audience = str(doc.data.get("audience") or "internal")
    if audience not in AUDIENCES:
        problems.append(Problem(doc.path, doc.line("audience"), f"audience must be one of {', '.join(AUDIENCES)}, not '{audience}'"))
    return audience


class _YamlDoc:
    """A standalone YAML file (an FAQ entry) with the line of each key, shaped like `_Doc`."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = path
        self.key_lines: dict[str, int] = {}
        self.ok = False
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(path, 1, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"))
            self.data, self.lines = {}, []
            return
        self.lines = text.splitlines()
        data, self.key_lines = _parse_yaml_mapping(text, path, 1, problems)
        self.data = data or {}
        self.ok = data is not None

    def line(self, key: str) -> int:
        return self.key_lines.get(key, 1)

    def text_line(self, n: int) -> str:
        return self.lines[n - 1] if 0 < n <= len(self.lines) else ""


FAQ_KEYS = ("id", "question", "similar", "answer", "category", "intents", "negative_keywords", "status", "audience", "updated")


def _load_faq(path: Path, rel: str, problems: list[Problem]) -> Article | None:
    """A standalone FAQ entry (faq/<id>.yaml): one standard question, similar ones, a Markdown answer.
    It is served as an article whose title is the question and whose body is the answer."""
    doc = _YamlDoc(path, problems)
    if not doc.ok:
        return None
    for key in doc.data:
        if key not in FAQ_KEYS:
            problems.append(Problem(path, doc.line(str(key)), f"unknown key '{key}' (an FAQ entry has {', '.join(FAQ_KEYS)})"))
    entry_id = _required_str(doc, "id", problems)
    question = _required_str(doc, "question", problems)
    answer = doc.data.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        problems.append(Problem(path, doc.line("answer"), "the answer is empty"))
        answer = ""
    status = _status(doc, problems)
    similar = tuple(q.strip() for q in _str_list(doc, "similar", problems) if q.strip())
    intents, negatives, audience = _str_list(doc, "intents", problems), _str_list(doc, "negative_keywords", problems), _audience(doc, problems)
    if not entry_id or not question or not answer:
        return None
    body_line = doc.line("answer")
    if re.search(r":\s*[|>][-+0-9]*\s*$", doc.text_line(body_line)):  # a block scalar (answer: |) starts below
        body_line += 1
    assets = check_body(path, answer.strip("\n"), body_line, audience, problems)
    return Article(
        id=entry_id,
        title=question,
        category=str(doc.data.get("category") or ""),
        intents=intents,
        tags=(),
        status=status,
        updated=str(doc.data.get("updated") or ""),
        body=answer.strip("\n"),
        path=rel,
        body_line=body_line,
        questions=(question, *similar),
        negative_keywords=negatives,
        audience=audience,
        source="faq",
        questions_line=doc.line("question"),
        assets=assets,
    )


# --- what customers may see: agent-only sections and images -----------------------------------------

# A heading ending with this marker hides its section (and the sections under it) from customers.
INTERNAL_MARK = re.compile(r"\s*<!--\s*internal\s*-->\s*$", re.IGNORECASE)
_ANY_MARK = re.compile(r"<!--\s*internal\s*-->", re.IGNORECASE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s")
_FENCE_LINE = re.compile(r"^ {0,3}(```|~~~)")
IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
ASSETS_DIR = "assets"
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_ASSET_BYTES = 300_000


def strip_internal_mark(heading: str) -> tuple[str, bool]:
    """A heading's text without the internal marker, and whether it had one."""
    stripped = INTERNAL_MARK.sub("", heading)
    return stripped, stripped != heading


def check_body(path: Path, body: str, body_line: int, audience: str, problems: list[Problem]) -> tuple[str, ...]:
    """Check internal markers and image references of an article body; return the images it shows
    (paths under the KB's assets/ folder). Images are files relative to the article's own folder, as
    a Markdown editor previews them, and must lie in assets/."""
    from assist.index.chunk import split_sections

    assets: list[str] = []
    root = _kb_root(path)
    in_fence = False
    for n, line in enumerate(body.splitlines()):
        where = body_line + n
        if _FENCE_LINE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if _ANY_MARK.search(line) and not (_HEADING.match(line) and INTERNAL_MARK.search(line)):
            problems.append(Problem(path, where, "'<!-- internal -->' belongs at the end of a heading line (it hides that section from customers)"))
        for alt, url in IMAGE.findall(line):
            name = _check_image(path, root, where, alt, url, problems)
            if name and name not in assets:
                assets.append(name)
    if audience == "public" and body.strip() and not any(not s.internal for s in split_sections("", body)):
        problems.append(Problem(path, body_line, "every section of this public article is marked internal: customers would see nothing"))
    return tuple(assets)


def _kb_root(path: Path) -> Path:
    """The KB folder of an article or FAQ file (the parent of articles/ or faq/)."""
    for parent in path.parents:
        if parent.name in ("articles", "faq", "templates"):
            return parent.parent
    return path.parent


def _check_image(path: Path, root: Path, line: int, alt: str, url: str, problems: list[Problem]) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:|^//", url, re.IGNORECASE):
        problems.append(Problem(path, line, f"image '{url}' is not a KB file: put images in {ASSETS_DIR}/ (customers' browsers must not fetch other sites)"))
        return None
    target = (path.parent / url).resolve()
    assets = (root / ASSETS_DIR).resolve()
    if not target.is_relative_to(assets):
        problems.append(Problem(path, line, f"image '{url}' is outside {ASSETS_DIR}/ (write it relative to this file, e.g. ../../{ASSETS_DIR}/steps.png)"))
        return None
    if not target.is_file():
        problems.append(Problem(path, line, f"image '{url}' not found"))
        return None
    if target.suffix.lower() not in IMAGE_TYPES:
        problems.append(Problem(path, line, f"image '{url}': use {', '.join(IMAGE_TYPES)}"))
        return None
    size = target.stat().st_size
    if size > MAX_ASSET_BYTES:
        problems.append(Problem(path, line, f"image '{url}' is {size // 1000} KB; at most {MAX_ASSET_BYTES // 1000} KB (help-centre pages load on phones)"))
        return None
    if not alt.strip():
        problems.append(Problem(path, line, f"image '{url}' needs alt text (![what it shows]({url})) for screen readers"))
    return target.relative_to(assets).as_posix()


_ENV = SandboxedEnvironment()


def template_placeholders(body: str) -> set[str]:
    """Names a template body refers to (raises jinja2.TemplateSyntaxError on bad syntax)."""
    return meta.find_undeclared_variables(_ENV.parse(body))


def _load_template(path: Path, rel: str, problems: list[Problem]) -> ReplyTemplate | None:
    doc = _Doc(path, problems)
    if not doc.ok:
        return None
    template_id = _required_str(doc, "id", problems)
    title = _required_str(doc, "title", problems)
    variables = []
    raw_vars = doc.data.get("variables") or []
    if not isinstance(raw_vars, list):
        problems.append(Problem(path, doc.line("variables"), "'variables' must be a list of {name, description, required}"))
        raw_vars = []
    for item in raw_vars:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            problems.append(Problem(path, doc.line("variables"), f"a variable needs a 'name': {item!r}"))
            continue
        default = item.get("default")
        variables.append(
            Variable(
                name=str(item["name"]).strip(),
                description=str(item.get("description") or ""),
                required=bool(item.get("required", False)),
                default=None if default is None else str(default),
            )
        )
    if not doc.body.strip():
        problems.append(Problem(path, doc.body_line, "the template body is empty"))
    else:
        declared = {v.name for v in variables}
        try:
            used = template_placeholders(doc.body)
        except TemplateSyntaxError as exc:
            problems.append(Problem(path, doc.body_line + (exc.lineno or 1) - 1, f"template syntax error: {exc.message}"))
            used = set()
        for name in sorted(used - declared):
            line = _first_line_of(doc.body, name) + doc.body_line - 1
            problems.append(Problem(path, line, f"placeholder '{{{{ {name} }}}}' is not declared in 'variables'"))
    if not template_id or not title:
        return None
    tier = doc.data.get("tier")
    return ReplyTemplate(
        id=template_id,
        title=title,
        intents=_str_list(doc, "intents", problems),
        variables=tuple(variables),
        body=doc.body,
        path=rel,
        tier=None if tier is None else str(tier),
        products=_str_list(doc, "products", problems),
        distinct_facts=_str_list(doc, "distinct_facts", problems),
    )


# What a question's wording may vary by and still be the same question: punctuation and spaces, letter
# case, full-width forms, and the polite filler around it (亲、请问、你好、呢、啊).
_FILLER = re.compile(r"^(?:亲爱的|亲|您好|你好|请问|问一下|想问一下|我想问一下|咨询一下|那个)+|(?:呢|啊|呀|吗|哈|哦|嘛|谢谢|谢啦)+$")
_NOT_WORD = re.compile(r"[\W_]+")


def normalize_question(text: str) -> str:
    """The form two phrasings of one question share: NFKC (full-width to half-width), lower case,
    no punctuation or spaces, no leading / trailing filler words."""
    import unicodedata

    flat = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())
    previous = None
    while previous != flat:
        previous, flat = flat, _FILLER.sub("", flat)
    return flat


def _key_line(path: Path, key: str) -> int:
    """The line of a key in an article's front matter or an FAQ entry's YAML."""
    doc = _YamlDoc(path, []) if path.suffix in (".yaml", ".yml") else _Doc(path, [])
    return doc.line(key)


def _first_line_of(body: str, name: str) -> int:
    for i, line in enumerate(body.splitlines(), start=1):
        if re.search(r"\b" + re.escape(name) + r"\b", line):
            return i
    return 1


@dataclass(frozen=True)
class _IntentsFile:
    intents: list[tuple[Intent, int]]
    out_of_scope_examples: tuple[str, ...] = ()
    builtin_out_of_scope: bool = True


def _load_intents_file(path: Path, rel: str, problems: list[Problem]) -> _IntentsFile:
    """intents.yaml: `intents:` plus the optional `out_of_scope_examples:` list and `builtin_out_of_scope:` flag."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(path, 1, f"not valid UTF-8 ({exc.reason})"))
        return _IntentsFile([])
    data, key_lines = _parse_yaml_mapping(text, path, 1, problems)
    if data is None:
        return _IntentsFile([])
    oos = data.get("out_of_scope_examples") or []
    if not isinstance(oos, list) or not all(isinstance(e, str) and e.strip() for e in oos):
        problems.append(Problem(path, key_lines.get("out_of_scope_examples", 1), "'out_of_scope_examples' must be a list of non-empty strings"))
        oos = []
    builtin = data.get("builtin_out_of_scope", True)
    if not isinstance(builtin, bool):
        problems.append(Problem(path, key_lines.get("builtin_out_of_scope", 1), "'builtin_out_of_scope' must be true or false"))
        builtin = True
    return _IntentsFile(_load_intents(data, text, path, problems), tuple(e.strip() for e in oos), builtin)


def _load_intents(data: dict, text: str, path: Path, problems: list[Problem]) -> list[tuple[Intent, int]]:
    items = data.get("intents")
    if not isinstance(items, list):
        problems.append(Problem(path, 1, "expected a top-level 'intents:' list"))
        return []
    lines = _list_item_lines(text)
    intents = []
    for i, item in enumerate(items):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            problems.append(Problem(path, line, "each intent needs a 'name'"))
            continue
        name = str(item["name"]).strip()
        if name == OUT_OF_SCOPE:
            problems.append(Problem(path, line, f"'{OUT_OF_SCOPE}' is built in and must not be declared"))
            continue
        examples = item.get("examples") or []
        if not isinstance(examples, list) or not examples:
            problems.append(Problem(path, line, f"intent '{name}' has no examples"))
            examples = []
        keywords = item.get("keywords") or []
        for key in ("clarify", "route"):
            if item.get(key) is not None and not isinstance(item.get(key), str):
                problems.append(Problem(path, line, f"intent '{name}': '{key}' must be a string"))
        intents.append(
            (
                Intent(
                    name=name,
                    label=str(item.get("label") or name),
                    description=str(item.get("description") or ""),
                    examples=tuple(str(e) for e in examples),
                    keywords=tuple(str(k) for k in keywords) if isinstance(keywords, list) else (),
                    escalate=bool(item.get("escalate", False)),
                    priority=int(item.get("priority", 3)) if str(item.get("priority", 3)).isdigit() else 3,
                    clarify=str(item.get("clarify") or "").strip() if isinstance(item.get("clarify"), str) else "",
                    route=str(item.get("route") or "").strip() if isinstance(item.get("route"), str) else "",
                ),
                line,
            )
        )
    return intents


def _load_synonyms(path: Path, problems: list[Problem]) -> tuple[tuple[str, ...], ...]:
    """synonyms.yaml: a top-level `synonyms:` list of groups, each a list of at least two words
    (多少钱 / 价格 / 费用 / 收费). A word belongs to one group; words are single tokens (no spaces)."""
    doc = _YamlDoc(path, problems)
    if not doc.ok:
        return ()
    groups = doc.data.get("synonyms")
    if not isinstance(groups, list):
        problems.append(Problem(path, doc.line("synonyms"), "expected a top-level 'synonyms:' list of word groups"))
        return ()
    lines = _list_item_lines("\n".join(doc.lines), "synonyms")
    out, first_seen = [], {}
    for i, group in enumerate(groups):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(w, (str, int)) and str(w).strip() for w in group):
            problems.append(Problem(path, line, "a synonym group is a list of at least two words, e.g. [多少钱, 价格, 费用]"))
            continue
        words = tuple(dict.fromkeys(str(w).strip() for w in group))
        for word in words:
            if " " in word:
                problems.append(Problem(path, line, f"synonym '{word}' has a space: use single words"))
            elif word.lower() in first_seen:
                problems.append(Problem(path, line, f"'{word}' is already in the group at line {first_seen[word.lower()]}"))
            first_seen.setdefault(word.lower(), line)
        out.append(words)
    return tuple(out)


def _list_item_lines(text: str, key: str = "intents") -> list[int]:
    """1-based lines of the items of a top-level list (`intents:` by default)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


def _content_hash(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def check_kb(kb_dir: Path) -> tuple[KB | None, list[Problem]]:
    """Load a KB and return it with every problem found (an empty list means clean)."""
    root = Path(kb_dir)
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem(root, 1, "no such knowledge base folder")]
    article_files = sorted((root / "articles").rglob("*.md"))
    template_files = sorted((root / "templates").rglob("*.md"))
    intents_file = root / "intents.yaml"
    if not article_files and not (root / "faq").is_dir():
        problems.append(Problem(root / "articles", 1, "no articles found (expected articles/**/*.md or faq/*.yaml)"))

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    faq_files = sorted((root / "faq").glob("*.yaml")) + sorted((root / "faq").glob("*.yml"))
    articles = [a for p in article_files if (a := _load_article(p, rel(p), problems))]
    articles += [a for p in faq_files if (a := _load_faq(p, rel(p), problems))]
    templates = [t for p in template_files if (t := _load_template(p, rel(p), problems))]
    intents_doc = _load_intents_file(intents_file, rel(intents_file), problems) if intents_file.exists() else _IntentsFile([])
    intent_rows = intents_doc.intents

    seen_ids: dict[str, str] = {}
    for item in [*articles, *templates]:
        path = root / item.path
        if item.id in seen_ids:
            line = _key_line(path, "id")
            problems.append(Problem(path, line, f"duplicate id '{item.id}' (already used by {seen_ids[item.id]})"))
        else:
            seen_ids[item.id] = item.path

    for item in [*articles, *templates]:
        for other in item.distinct_facts:
            if other not in seen_ids:
                path = root / item.path
                problems.append(Problem(path, _key_line(path, "distinct_facts"), f"distinct_facts: unknown id '{other}'"))

    asked: dict[str, tuple[Path, int]] = {}  # normalised question -> its first place
    for article in articles:
        if article.status != "published":
            continue
        path = root / article.path
        line = article.questions_line
        for question in article.questions:
            key = normalize_question(question)
            if key in asked and asked[key][0] != path:
                first, first_line = asked[key]
                problems.append(Problem(path, line, f"duplicate question '{question}' (also in {first.relative_to(root).as_posix()}:{first_line})"))
            asked.setdefault(key, (path, line))

    intent_names: dict[str, int] = {}
    for intent, line in intent_rows:
        if intent.name in intent_names:
            problems.append(Problem(intents_file, line, f"duplicate intent '{intent.name}' (first at line {intent_names[intent.name]})"))
        intent_names.setdefault(intent.name, line)
    for item in [*articles, *templates]:
        for name in item.intents:
            if name not in intent_names:
                path = root / item.path
                problems.append(Problem(path, _key_line(path, "intents"), f"unknown intent '{name}' (not in intents.yaml)"))

    synonyms_file = root / "synonyms.yaml"
    synonyms = _load_synonyms(synonyms_file, problems) if synonyms_file.exists() else ()
    files = article_files + faq_files + template_files + [f for f in (intents_file, synonyms_file) if f.exists()]
    kb = KB(
        root=str(root),
        articles=tuple(articles),
        templates=tuple(templates),
        intents=tuple(i for i, _ in intent_rows),
        content_hash=_content_hash(root, files),
        out_of_scope_examples=intents_doc.out_of_scope_examples,
        builtin_out_of_scope=intents_doc.builtin_out_of_scope,
        synonyms=synonyms,
    )
    return kb, sorted(problems, key=lambda p: (str(p.path), p.line))


def load_kb(kb_dir: Path) -> KB:
    """Load a KB, raising KBValidationError when `assist kb check` would fail."""
    kb, problems = check_kb(kb_dir)
    if problems:
        raise KBValidationError(problems)
    return kb
