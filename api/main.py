"""The FastAPI app: `create_app()` builds it; the lifespan loads the model and the index once.

Run it with `assist serve`, or `uvicorn --factory api.main:create_app`.
"""

import logging
import sys
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.auth import credentials_from_settings, warn_about
from api.errors import install_error_handlers
from api.metrics import Metrics
from api.middleware import BodyGuard, Observe
from api.routes import admin, feedback, health, kb, suggest
from api.service import Service
from assist.config import Settings, get_settings
from assist.errors import IndexNotFound
from assist.feedback import FeedbackStore
from assist.index.embed import make_embedder
from assist.redact import install_log_redaction

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


def _package_version() -> str:
    try:
        return version("assist")
    except PackageNotFoundError:
        return "0+unknown"


def _configure_logging(s: Settings) -> None:
    # No-op when the CLI already configured logging; needed in uvicorn worker processes and tests.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    level = getattr(logging, s.log_level.upper(), logging.INFO)
    for name in ("assist", "api"):
        logging.getLogger(name).setLevel(level)
    install_log_redaction()


@asynccontextmanager
async def lifespan(app: FastAPI):
    s: Settings = app.state.settings
    _configure_logging(s)
    warn_about(s)
    e = s.embedding
    embedder = make_embedder(e.model, backend=e.backend, models_dir=s.models_dir, threads=e.threads, query_backend=e.query_backend)
    service = Service(s, embedder)
    try:
        service.reload()
    except IndexNotFound as exc:  # start unready: readyz says 503 until a build and a reload
        log.error("%s", exc)
    app.state.service = service
    app.state.feedback = FeedbackStore(s.feedback_db)
    app.state.metrics.set_index_version(service.version)
    log.info("assist API ready: index %s, feedback in %s", service.version, s.feedback_db)
    try:
        yield
    finally:
        app.state.feedback.close()


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
    app = FastAPI(title="assist", version=_package_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = s
    app.state.credentials = credentials_from_settings(s)
    app.state.metrics = Metrics()
    install_error_handlers(app)
    routers = [module.router for module in (suggest, feedback, kb, admin, health)]
    templates = [(route.path_regex, route.path) for router in routers for route in router.routes]
    app.add_middleware(BodyGuard, max_bytes=s.max_body_bytes)
    app.add_middleware(Observe, metrics=app.state.metrics, templates=templates)  # added last: outermost
    for router in routers:
        app.include_router(router)

    base_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = base_openapi()
            _apply_limits(schema, {"max_turns": ("maxItems", s.max_turns), "max_turn_chars": ("maxLength", s.max_turn_chars)})
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/", include_in_schema=False)
    def index():
        page = STATIC / "index.html"
        return FileResponse(page) if page.is_file() else HTMLResponse(PLACEHOLDER)

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
