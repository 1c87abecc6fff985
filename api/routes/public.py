"""The customer help centre: /help (the page), /help/contact and /v1/public/* — no API key.

Only published items marked `audience: public` are served, minus their internal sections; templates,
intents and scores never leave. `api.public.PublicGuard` rate-limits these paths per client address and
answers CORS for the configured shop origins before a request gets here.
"""

import re
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from api.deps import FeedbackDep, LoadedDep, MetricsDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import PublicArticleOut, PublicCategoriesOut, PublicFeedbackOut, PublicFeedbackRequest, PublicSearchOut
from assist.config import Settings
from assist.feedback import HelpEvent

STATIC = FilePath(__file__).resolve().parent.parent / "static" / "help"
CONTACT_PATH = "/help/contact"
SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

router = APIRouter(tags=["help centre (public)"])


def _session(request: Request, given: str | None = None) -> str | None:
    """The help page's random per-tab id (header X-Help-Session); anything else is ignored, not refused."""
    value = given if given is not None else request.headers.get("x-help-session")
    return value if value and SESSION.match(value) else None


def _cached(response: Response, s: Settings, shared: bool) -> None:
    # private: search and article views are counted per session, a shared cache would hide them
    scope = "public" if shared else "private"
    response.headers["Cache-Control"] = f"{scope}, max-age={s.public_cache_seconds}" if s.public_cache_seconds else "no-store"


def _enabled(s: Settings) -> None:
    if not s.public_enabled:
        raise ApiError(404, "not_found", "the help centre is switched off (ASSIST_PUBLIC_ENABLED=false)")


@router.get("/v1/public/categories", response_model=PublicCategoriesOut, summary="Categories customers can browse",
            responses=responses(404, 429, 500, 503))
async def categories(loaded: LoadedDep, settings: SettingsDep, response: Response) -> dict:
    _enabled(settings)
    _cached(response, settings, shared=True)
    return {"categories": [{"name": c, "count": n} for c, n in loaded.help.categories()],
            "contact_url": CONTACT_PATH, "max_query_chars": settings.public_max_query_chars}


@router.get("/v1/public/search", response_model=PublicSearchOut, summary="Search the public help articles",
            responses=responses(404, 422, 429, 500, 503))
def search(
    request: Request, response: Response, loaded: LoadedDep, settings: SettingsDep, store: FeedbackDep, metrics: MetricsDep,
    q: Annotated[str, Query(max_length=2000, description="the customer's words; empty with a category lists it",
                            json_schema_extra={"x-limit": "public_max_query_chars"})] = "",
    category: Annotated[str | None, Query(max_length=200, description="only this category")] = None,
    limit: Annotated[int | None, Query(ge=1, le=50, description="results wanted [default: ASSIST_PUBLIC_RESULTS]")] = None,
) -> dict:
    """Public articles and FAQ answers for a search, best first; `abstained` when none is a good answer
    (then offer `contact_url`). Same retrieval as the agents' suggestions, over what customers may see."""
    _enabled(settings)
    if len(q) > settings.public_max_query_chars:
        raise ApiError(422, "query_too_long", f"q: at most {settings.public_max_query_chars} characters, got {len(q)}")
    result = loaded.help.search(q, category, limit)
    if result.query:
        metrics.public_searches.labels("abstained" if result.abstained else "answered").inc()
        store.add_help(HelpEvent("search", _session(request), query=result.query, abstained=result.abstained))
    _cached(response, settings, shared=False)
    return {
        "query": result.query, "category": result.category, "abstained": result.abstained, "contact_url": CONTACT_PATH,
        "results": [{"id": h.id, "title": h.title, "category": h.category, "snippet": h.snippet, "heading_path": list(h.heading_path),
                     "matched_terms": list(h.matched_terms), "matched_question": h.matched_question} for h in result.hits],
    }


ArticleId = Annotated[str, Path(max_length=200, description="the id from the KB")]


@router.get("/v1/public/articles/{article_id}", response_model=PublicArticleOut, summary="One public article",
            responses=responses(404, 422, 429, 500, 503))
def article(article_id: ArticleId, request: Request, response: Response, loaded: LoadedDep, settings: SettingsDep,
            store: FeedbackDep, metrics: MetricsDep) -> dict:
    _enabled(settings)
    page = loaded.help.page(article_id)
    if page is None:  # drafts and internal items are exactly as absent as unknown ids
        raise ApiError(404, "not_found", f"no help article {article_id!r}")
    metrics.help_events.labels("view").inc()
    store.add_help(HelpEvent("view", _session(request), article_id=page.id))
    _cached(response, settings, shared=False)
    return {"id": page.id, "title": page.title, "category": page.category, "updated": page.updated, "html": page.html,
            "related": [{"id": i, "title": t} for i, t in page.related]}


@router.get("/v1/public/assets/{name:path}", summary="An image a public article shows", responses=responses(404, 429),
            response_class=FileResponse)
def asset(name: Annotated[str, Path(max_length=300)], loaded: LoadedDep, settings: SettingsDep) -> FileResponse:
    _enabled(settings)
    path = loaded.help.asset_file(name)
    if path is None:
        raise ApiError(404, "not_found", f"no public image {name!r}")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


@router.post("/v1/public/feedback", status_code=201, response_model=PublicFeedbackOut, summary="Was this article helpful?",
             responses=responses(404, 413, 415, 422, 429, 500, 503))
def feedback(body: PublicFeedbackRequest, request: Request, response: Response, loaded: LoadedDep, settings: SettingsDep,
             store: FeedbackDep, metrics: MetricsDep) -> dict:
    """A customer's yes / no on an article, with optional words (stored with personal data redacted)."""
    _enabled(settings)
    if loaded.help.page(body.article_id) is None:
        raise ApiError(404, "not_found", f"no help article {body.article_id!r}")
    event = "helpful" if body.helpful else "not_helpful"
    metrics.help_events.labels(event).inc()
    store.add_help(HelpEvent(event, _session(request), query=body.query, article_id=body.article_id, comment=body.comment or None))
    response.headers["Cache-Control"] = "no-store"
    return {"recorded": True}


@router.get(CONTACT_PATH, include_in_schema=False)
def contact(request: Request, settings: SettingsDep, store: FeedbackDep, metrics: MetricsDep,
            session: Annotated[str | None, Query(max_length=64)] = None,
            article: Annotated[str | None, Query(max_length=200)] = None) -> RedirectResponse:
    """'Still need help? Contact us': counted (a session that contacts was not deflected), then on to the shop's page."""
    _enabled(settings)
    metrics.help_events.labels("contact").inc()
    store.add_help(HelpEvent("contact", _session(request, session), article_id=article))
    return RedirectResponse(settings.public_contact_url, status_code=303, headers={"Cache-Control": "no-store"})


@router.get("/help", include_in_schema=False)
async def help_page(settings: SettingsDep) -> FileResponse:
    _enabled(settings)
    page = STATIC / "index.html"
    if not page.is_file():
        raise ApiError(404, "not_found", "the help page is not installed")
    return FileResponse(page, headers={"Cache-Control": "no-cache"})
