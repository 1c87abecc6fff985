"""The FastAPI app: `create_app()` builds it; the lifespan loads the model and the index once.

Run it with `assist serve`, or `uvicorn --factory api.main:create_app`.
"""

import asyncio
import importlib.util
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.auth import credentials_from_settings, warn_about
from api.errors import install_error_handlers
from api.fastpath import FastSuggest
from api.metrics import Metrics
from api.middleware import BodyGuard, Observe
from api.public import PublicGuard, TokenBucket, parse_networks
from api.routes import admin, feedback, health, kb, public, suggest
from api.routes.suggest import Placement
from api.service import Service
from assist.config import Settings, get_settings, package_version
from assist.errors import AssistError
from assist.experiments import load_experiment
from assist.feedback import FeedbackStore, retention_cutoff, store_of
from assist.index.embed import embedder_from_settings
from assist.index.store import current_version
from assist.redact import configure_logging, log_off_the_request_path
from assist.suggestlog import LogWriter

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

DESCRIPTION = """Knowledge-base suggestions for customer-service agents, Chinese first.

Agent endpoints take an API key in `X-API-Key`; admin endpoints take `Authorization: Bearer <admin token>`.
Every error is JSON: `{"error": {"code": "...", "message": "..."}}`.
"""

PLACEHOLDER = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>assist</title>
<body style="font-family:sans-serif;margin:3em"><h1>assist API 已启动</h1>
<p>The assist API is up. The agent sidebar is not installed yet.</p>
<p><a href="/docs">API 文档 / API docs</a> · <a href="/readyz">/readyz</a></p></body></html>"""


@asynccontextmanager
async def lifespan(app: FastAPI):
    s: Settings = app.state.settings
    configure_logging(s.log_level)  # again in uvicorn worker processes, which do not run the CLI callback
    restore_access_log = log_off_the_request_path()  # uvicorn's access line cost ~0.3 ms of each request
    warn_about(s)
    service = Service(s, embedder_from_settings(s))
    try:
        service.reload()
    except AssistError as exc:  # no index, or one this configuration cannot serve: start unready (503) until fixed and reloaded
        log.error("%s", exc)
    app.state.service = service
    app.state.feedback = store = store_of(s)
    app.state.placement = Placement(s.suggest_threads)
    app.state.suggestion_log = LogWriter(store, on_drop=app.state.metrics.log_dropped.inc) if s.suggestion_log else None
    app.state.metrics.set_index_version(service.version)
    purger = asyncio.create_task(_purge_every_hour(store, s.retention_days)) if s.retention_days else None
    ranker = asyncio.create_task(_refresh_nudges(service, store, s)) if s.feedback_ranking.weight > 0 else None
    poller = asyncio.create_task(_follow_current(service, app.state.metrics, s.index_poll_seconds)) if s.index_poll_seconds else None
    log.info("assist API ready: index %s, store %s (%s)", service.version, store.where,
             "text encrypted" if store.cipher.enabled else "text NOT encrypted")
    try:
        yield
    finally:
        for task in (purger, ranker, poller):
            if task is not None:
                task.cancel()
        if app.state.suggestion_log is not None:
            app.state.suggestion_log.close()
        store.close()
        app.state.metrics.close()
        app.state.placement.shutdown()
        restore_access_log()


async def _refresh_nudges(service: Service, store: FeedbackStore, s: Settings) -> None:
    """Feedback-weighted ranking: the items' acceptance rates recomputed from the store, now and then."""
    from datetime import datetime, timedelta, timezone

    from assist.priors import compute_nudges

    r = s.feedback_ranking
    while True:
        try:
            now = datetime.now(timezone.utc)
            since = (now - timedelta(days=4 * r.half_life_days)).isoformat(timespec="milliseconds")  # older counts < 1/16
            suggestions = await asyncio.to_thread(store.suggestions, since)
            feedback = await asyncio.to_thread(store.feedback_between, since)
            nudges = compute_nudges(suggestions, feedback, now, r.half_life_days, r.strength, r.weight)
            loaded = service.current
            if loaded is not None:
                for suggester in [loaded.suggester, *(loaded.arms or {}).values()]:
                    suggester.nudges = nudges
            log.info("feedback ranking: rates of %d items from %d suggestions", len(nudges), len(suggestions))
        except Exception as exc:  # keep the last rates
            log.warning("feedback ranking refresh failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(r.refresh_seconds)


async def _follow_current(service: Service, metrics: Metrics, seconds: float) -> None:
    """Replicas sharing an index dir: serve the version CURRENT names within `seconds` of its change. CURRENT
    is looked at four times as often (a stat and a small read), so that loading the new version, beside the
    old one which keeps answering until the swap, fits in the rest of the time. A failed load keeps the old
    one and is tried again at the next look."""
    failed: str | None = None
    while True:
        await asyncio.sleep(seconds / 4)
        target = None
        try:
            target = current_version(service.settings.index_dir)
            if target is None or target == service.version:
                continue
            result = await asyncio.to_thread(service.reload)
            metrics.reloads.labels("changed").inc()
            metrics.set_index_version(result.current)
            failed = None
        except Exception as exc:  # a half-copied version, a full disk: keep serving, look again
            metrics.reloads.labels("error").inc()
            if failed != target:
                log.error("index %s not loaded, still serving %s: %s: %s", target, service.version, type(exc).__name__, exc)
            failed = target


async def _purge_every_hour(store: FeedbackStore, days: int) -> None:
    """Retention: what is older than `days` goes, at start and then every hour."""
    while True:
        try:
            deleted = await asyncio.to_thread(store.purge, retention_cutoff(days))
            if any(deleted.values()):
                log.info("retention (%d days): deleted %s", days, deleted)
        except Exception as exc:  # a locked or full store: try again next hour
            log.warning("retention purge failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(3600)


def _apply_limits(node, limits: dict[str, tuple[str, int]]) -> None:
    """Replace `x-limit` markers in the OpenAPI document with the configured maxItems / maxLength."""
    if isinstance(node, dict):
        name = node.pop("x-limit", None)
        if name in limits:
            key, value = limits[name]
            node[key] = value
        for child in node.values():
            _apply_limits(child, limits)
    elif isinstance(node, list):
        for child in node:
            _apply_limits(child, limits)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app. Raises AssistError when the configuration must not serve (e.g. no API keys)."""
    s = settings or get_settings()
    app = FastAPI(title="assist", version=package_version(), description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served below from local files: no CDN, works offline
    app.state.settings = s
    app.state.credentials = credentials_from_settings(s)
    load_experiment(s.experiments)  # a malformed experiment refuses to start (template ids are checked per index)
    app.state.metrics = Metrics()
    install_error_handlers(app)
    routers = [module.router for module in (suggest, feedback, kb, public, admin, health)]
    templates = [(route.path_regex, route.path) for router in routers for route in router.routes]
    app.add_middleware(FastSuggest, api=app)  # innermost: sees the body BodyGuard checked
    app.add_middleware(BodyGuard, max_bytes=s.max_body_bytes)
    app.add_middleware(PublicGuard, bucket=TokenBucket(s.public_rate, s.public_burst), trusted=parse_networks(s.public_trusted_proxies),
                       origins=tuple(o.strip() for o in s.public_origins.split(",") if o.strip()), metrics=app.state.metrics)
    app.add_middleware(Observe, metrics=app.state.metrics, templates=templates)  # added last: outermost
    for router in routers:
        app.include_router(router)

    base_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = base_openapi()
            _apply_limits(schema, {"max_turns": ("maxItems", s.max_turns), "max_turn_chars": ("maxLength", s.max_turn_chars),
                                   "public_max_query_chars": ("maxLength", s.public_max_query_chars)})
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/", include_in_schema=False)
    def index():
        page = STATIC / "index.html"
        return FileResponse(page) if page.is_file() else HTMLResponse(PLACEHOLDER)

    @app.get("/review", include_in_schema=False)
    def review_page():  # the page holds no data: it asks for the admin token and calls /v1/admin/review
        page = STATIC / "review" / "index.html"
        return FileResponse(page) if page.is_file() else HTMLResponse(PLACEHOLDER)

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _offline_docs(app)
    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the assets the fastapi-offline package bundles."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    assets = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="assist API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc():
        return get_redoc_html(openapi_url=app.openapi_url, title="assist API", redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)
