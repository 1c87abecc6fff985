"""Markdown articles and reply templates -> chunks with heading paths and stable ids (DESIGN §3)."""

import hashlib
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter
from markdown_it import MarkdownIt

from assist.kb import KB, Article, ReplyTemplate, strip_internal_mark

PATH_SEP = " > "
# Chinese sentence ends first, so a long section splits between sentences, not inside words.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", ". ", "，", ",", " ", ""]

_MD = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    article_id: str
    kind: str  # "article" (a section) | "question" (a FAQ question of an article) | "template"
    title: str
    heading_path: tuple[str, ...]
    text: str
    intents: tuple[str, ...] = ()
    public: bool = False  # customers may see it: a published public article's section (not internal) or question

    @property
    def question(self) -> bool:
        """A FAQ question row: `text` is the question, matched question to question."""
        return self.kind == "question"

    @property
    def path_text(self) -> str:
        return PATH_SEP.join(self.heading_path)

    @property
    def embed_text(self) -> str:
        """What the encoder and BM25 see: the heading path gives a short section its context; a
        question row is the question alone (a customer's question is compared with it as it is)."""
        if self.question:
            return self.text
        return f"{self.path_text}\n{self.text}" if self.heading_path else self.text


@dataclass(frozen=True)
class Section:
    heading_path: tuple[str, ...]
    text: str
    internal: bool = False  # under a heading marked `<!-- internal -->`: agents only


def split_sections(title: str, body: str) -> list[Section]:
    """Split Markdown by headings; headings inside code fences are not headings."""
    lines = body.splitlines()
    tokens = _MD.parse(body)
    heads = []  # (start_line, end_line, level, text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and tok.map:
            heads.append((tok.map[0], tok.map[1], int(tok.tag[1]), tokens[i + 1].content.strip()))
    sections = []
    stack: list[tuple[int, str, bool]] = []
    start, path, internal = 0, (title,), False
    for h_start, h_end, level, text in heads:
        sections.append(Section(path, "\n".join(lines[start:h_start]).strip(), internal))
        while stack and stack[-1][0] >= level:
            stack.pop()
        text, marked = strip_internal_mark(text)
        stack.append((level, text, marked))
        names = [t for _, t, _ in stack]
        internal = any(m for _, _, m in stack)  # an internal section's sub-sections are internal too
        # An article's top heading usually repeats its title; the path starts with the title once.
        if names and names[0] == title:
            names = names[1:]
        path = (title, *names)
        start = h_end
    sections.append(Section(path, "\n".join(lines[start:]).strip(), internal))
    return [s for s in sections if s.text]


def is_public(article: Article) -> bool:
    """Customers may see the article (its sections not marked internal): published and public."""
    return article.status == "published" and article.audience == "public"


def _splitter(size: int, overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        chunk_size=size,
        chunk_overlap=min(overlap, size // 2),
        keep_separator="end",
        strip_whitespace=True,
    )


def chunk_id(article_id: str, heading_path: tuple[str, ...], text: str) -> str:
    raw = "\x1f".join([article_id, PATH_SEP.join(heading_path), text])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]


def chunk_article(article: Article, size: int = 400, overlap: int = 40) -> list[Chunk]:
    splitter = _splitter(size, overlap)
    chunks, seen = [], set()
    public = is_public(article)
    for section in split_sections(article.title, article.body):
        pieces = [section.text] if len(section.text) <= size else splitter.split_text(section.text)
        for piece in pieces:
            cid = chunk_id(article.id, section.heading_path, piece)
            if cid in seen:  # the same text twice under one heading: one chunk is enough
                continue
            seen.add(cid)
            chunks.append(Chunk(cid, article.id, "article", article.title, section.heading_path, piece, article.intents,
                                public and not section.internal))
    return chunks


def question_rows(article: Article) -> list[Chunk]:
    """One row per FAQ question of the article (standard and similar): it points to the article, and
    retrieval merges it with the article's sections (one hit per article)."""
    path = (article.title,)
    rows, seen = [], set()
    for question in article.questions:
        cid = chunk_id(article.id, ("?",), question)
        if cid not in seen:
            seen.add(cid)
            rows.append(Chunk(cid, article.id, "question", article.title, path, question, article.intents, is_public(article)))
    return rows


def chunk_template(template: ReplyTemplate) -> Chunk:
    """A template is one chunk: agents pick it whole."""
    path = (template.title,)
    return Chunk(chunk_id(template.id, path, template.body), template.id, "template", template.title, path, template.body, template.intents)


def chunk_kb(kb: KB, size: int = 400, overlap: int = 40) -> list[Chunk]:
    """All chunks of the published articles (sections, then question rows) and the templates, in a stable order."""
    chunks = [c for a in kb.published for c in (*chunk_article(a, size, overlap), *question_rows(a))]
    chunks += [chunk_template(t) for t in kb.templates]
    return chunks
