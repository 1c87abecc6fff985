"""The customer help centre: what customers may see of the KB, its search and its article pages.

Customers see published articles and FAQ entries marked `audience: public`, minus the sections whose
heading ends with `<!-- internal -->`; never drafts, internal items or templates. Search is the
product's retrieval (`Suggester.rank_answers`) over the rows customers may see, with the same abstain
decision, so a customer gets "no good answer" and the way to an agent rather than an unrelated article.
"""

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from assist.index.chunk import is_public
from assist.kb import ASSETS_DIR, INTERNAL_MARK, Article
from assist.suggest.pipeline import Suggester
from assist.suggest.rank import snippet

PUBLIC_ASSET_URL = "/v1/public/assets/"

# html=False: raw HTML in an article is shown as text, never run; markdown-it also refuses javascript: links.
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass(frozen=True)
class PublicHit:
    id: str
    title: str
    category: str
    snippet: str
    heading_path: tuple[str, ...]
    matched_terms: tuple[str, ...]
    matched_question: str | None = None


@dataclass(frozen=True)
class PublicResults:
    query: str
    category: str | None
    abstained: bool
    hits: tuple[PublicHit, ...]


@dataclass(frozen=True)
class PublicPage:
    id: str
    title: str
    category: str
    updated: str
    html: str
    related: tuple[tuple[str, str], ...]  # (id, title) of other public items in its category
    assets: tuple[str, ...]  # images it shows, as paths under assets/


def public_body(article: Article) -> str:
    """The article's Markdown without its internal sections (a marked heading hides every section under
    it, down to the next heading of the same or a higher level) and without a first `# title` line."""
    lines = article.body.splitlines()
    tokens = _MD.parse(article.body)
    heads = [(tok.map[0], int(tok.tag[1]), bool(INTERNAL_MARK.search(tokens[i + 1].content)))
             for i, tok in enumerate(tokens) if tok.type == "heading_open" and tok.level == 0 and tok.map]
    keep = [True] * len(lines)
    hidden_below: int | None = None  # level of the internal heading being hidden
    for n, (start, level, internal) in enumerate(heads):
        if hidden_below is not None and level <= hidden_below:
            hidden_below = None
        if hidden_below is None and internal:
            hidden_below = level
        if hidden_below is not None:
            end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
            keep[start:end] = [False] * (end - start)
    kept = [line for line, k in zip(lines, keep) if k]
    first = next((i for i, line in enumerate(kept) if line.strip()), None)
    if first is not None and re.fullmatch(r"#\s+" + re.escape(article.title) + r"\s*#*\s*", kept[first].strip()):
        kept = kept[first + 1 :]
    return "\n".join(kept).strip("\n")


def asset_name(article_path: str, src: str) -> str | None:
    """The path under assets/ of an image written relative to its article file (None: not a KB asset)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:|^/", src, re.IGNORECASE):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(article_path), src))
    prefix = ASSETS_DIR + "/"
    return joined[len(prefix):] if joined.startswith(prefix) else None


def render_page(article: Article, related: tuple[tuple[str, str], ...] = ()) -> PublicPage:
    """The article as customers see it: its public Markdown rendered to safe HTML, images pointing to
    the public asset route and loaded lazily."""
    tokens = _MD.parse(public_body(article))
    assets: list[str] = []
    for token in tokens:
        for child in token.children or ():
            if child.type != "image":
                continue
            name = asset_name(article.path, str(child.attrGet("src") or ""))
            if name is None:  # kb check refuses these; never point a customer's browser elsewhere
                child.attrSet("src", "")
                continue
            assets.append(name)
            child.attrSet("src", PUBLIC_ASSET_URL + name)
            child.attrSet("loading", "lazy")
        if token.type == "link_open":
            token.attrSet("rel", "noopener")
    html = _MD.renderer.render(tokens, _MD.options, {})
    return PublicPage(article.id, article.title, article.category, article.updated, html, related, tuple(dict.fromkeys(assets)))


class HelpCentre:
    """The public view of one loaded index version (built with it, swapped with it)."""

    def __init__(self, suggester: Suggester, assets_dir: Path | None = None, results: int = 8, margin: float = 0.15):
        self.suggester = suggester
        self.index = index = suggester.index
        self.results = results
        self.margin = margin
        self.assets_dir = assets_dir
        # an item is visible when published, public, and something of it is not internal
        self.articles: dict[str, Article] = {
            a.id: a for a in index.kb.published if is_public(a) and index.public_lead(a.id) is not None}
        by_category: dict[str, list[Article]] = {}
        for a in sorted(self.articles.values(), key=lambda a: a.title):
            by_category.setdefault(a.category, []).append(a)
        self._by_category = by_category
        self.pages = {
            a.id: render_page(a, tuple((o.id, o.title) for o in by_category[a.category] if o.id != a.id)[:5])
            for a in self.articles.values()
        }
        self.assets = {name for page in self.pages.values() for name in page.assets}

    def categories(self) -> list[tuple[str, int]]:
        """(category, number of visible items), the largest first."""
        return sorted(((c, len(items)) for c, items in self._by_category.items()), key=lambda x: (-x[1], x[0]))

    def page(self, article_id: str) -> PublicPage | None:
        return self.pages.get(article_id)

    def asset_file(self, name: str) -> Path | None:
        """The file of an image a visible page shows (None for anything else, internal images included)."""
        if name not in self.assets or self.assets_dir is None:
            return None
        path = self.assets_dir / name
        return path if path.is_file() else None

    def search(self, text: str, category: str | None = None, limit: int | None = None) -> PublicResults:
        """Visible items for a customer's words, best first; empty words list the category (by title).
        Abstains (no hits) when retrieval has no good answer, as the agent suggestions do."""
        limit = limit or self.results
        query = " ".join(text.split())
        if category is not None and category not in self._by_category:
            return PublicResults(query, category, not query, ())
        if not query:
            items = self._by_category.get(category, []) if category is not None else []
            hits = tuple(self._browse_hit(a) for a in items[:limit])
            return PublicResults("", category, False, hits)
        s = self.suggester
        qvec = self.index.embedder.encode_queries([query])[0]
        depth = max(4 * limit, s.settings.candidates)
        rows = self.index.search(query, k=depth, kind="public-article", query_vector=qvec)
        intent = s.detector.detect(query, qvec, rows)
        abstained, answers = s.rank_answers(query, qvec, rows, intent, query, depth, audience="public")
        hits = []
        best = max((a.score for a in answers if a.article_id in self.articles), default=0.0)
        for a in answers:
            article = self.articles.get(a.article_id)
            if article is None or (category is not None and article.category != category):
                continue
            if a.score < best - self.margin:  # answers, not everything that shares a word
                break
            hits.append(PublicHit(a.article_id, article.title, article.category, a.snippet, a.heading_path,
                                  a.matched_terms, a.matched_question))
            if len(hits) == limit:
                break
        return PublicResults(query, category, abstained or not hits, tuple(hits))

    def _browse_hit(self, article: Article) -> PublicHit:
        lead = self.index.public_lead(article.id)
        return PublicHit(article.id, article.title, article.category, snippet(lead.text, ()) if lead else "",
                         lead.heading_path if lead else (article.title,), ())
