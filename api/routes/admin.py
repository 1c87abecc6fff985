import json
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.auth import actor, require_admin
from api.deps import FeedbackDep, LoadedDep, MetricsDep, ServiceDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import AuditLog, EraseRequest, EraseResponse, ReloadResponse, ReviewApplyOut, ReviewApplyRequest, ReviewIgnoreRequest
from assist.errors import AssistError
from assist.review import apply_gap, find_gap, ignore_gap, review_period
from assist.reviewpage import render
from assist.suggestlog import customer_ref

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/reload", response_model=ReloadResponse, summary="Serve the CURRENT index version",
             responses=responses(401, 403, 409, 500))
def reload_index(request: Request, service: ServiceDep, metrics: MetricsDep, store: FeedbackDep) -> dict:
    """Load the version `index_dir/CURRENT` names, then swap to it; requests in flight finish on the old one.

    A version that fails to load (missing, broken, built for another model) leaves the old one serving: 409.
    """
    try:
        result = service.reload()
    except Exception as exc:  # whatever broke in the new files, the old version keeps serving
        metrics.reloads.labels("error").inc()
        store.audit(actor(request), "reload", result="failed", serving=service.version, error=type(exc).__name__)
        log.error("index reload failed, still serving %s: %s: %s", service.version, type(exc).__name__, exc)
        raise ApiError(409, "reload_failed", f"the CURRENT index could not be loaded ({type(exc).__name__}: {exc}); "
                                             f"still serving {service.version or 'nothing'}") from None
    metrics.reloads.labels("changed" if result.changed else "unchanged").inc()
    metrics.set_index_version(service.version)  # the served one, even if another reload finished after ours
    store.audit(actor(request), "reload", previous=result.previous, current=result.current, changed=result.changed)
    return {"previous": result.previous, "current": result.current, "changed": result.changed, "seconds": result.seconds}


REVIEW_CONTENT = {200: {"description": "the review", "content": {"application/json": {}, "text/html": {}}}}


@router.get("/review", summary="The weekly review (KPIs, items, knowledge gaps, help centre)",
            responses={**responses(401, 403, 422, 500, 503), **REVIEW_CONTENT})
def review(
    request: Request, loaded: LoadedDep, settings: SettingsDep, store: FeedbackDep,
    since: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,3}[dhm]$", description="the period up to now: 7d, 24h, 30m")] = "7d",
    format: Annotated[Literal["json", "html"], Query(description="report.json, or the report.html page")] = "json",
) -> Response:
    """What `assist review --since` writes; texts are redacted as stored."""
    report = review_period(settings, store, since, None, loaded.index)
    store.audit(actor(request), "review", since=since, format=format)
    if format == "html":
        return HTMLResponse(render(report, "report.json"), headers={"Cache-Control": "no-store"})
    return Response(json.dumps(report, ensure_ascii=False), media_type="application/json", headers={"Cache-Control": "no-store"})


def _gap(body, settings, store, loaded) -> dict:
    try:
        return find_gap(review_period(settings, store, body.since, None, loaded.index), body.gap_id)
    except AssistError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.post("/review/apply", response_model=ReviewApplyOut, summary="Fix a knowledge gap: its requests become similar questions",
             responses=responses(401, 403, 404, 409, 422, 500, 503))
def review_apply(request: Request, body: ReviewApplyRequest, loaded: LoadedDep, settings: SettingsDep, store: FeedbackDep) -> dict:
    """Add a gap's requests as similar questions of an article in the server's KB folder (then build, gate and
    reload). The gap is looked up in the review of `since`. 409 when the KB would not pass kb check."""
    gap = _gap(body, settings, store, loaded)
    try:
        done = apply_gap(store, gap, settings.kb_dir, body.add_to, None)
    except AssistError as exc:
        status, code = (404, "not_found") if str(exc).startswith("no article") else (409, "kb_conflict")
        raise ApiError(status, code, str(exc)) from None
    store.audit(actor(request), "review_apply", gap=gap["id"], article=done["article"], questions=len(done["questions_added"]))
    return {"gap_id": gap["id"], "action": "added", "questions_added": done["questions_added"], "article_id": done["article"]}


@router.post("/review/ignore", response_model=ReviewApplyOut, summary="Ignore a knowledge gap from now on",
             responses=responses(401, 403, 404, 422, 500, 503))
def review_ignore(request: Request, body: ReviewIgnoreRequest, loaded: LoadedDep, settings: SettingsDep, store: FeedbackDep) -> dict:
    """No fix needed: later reviews leave this gap (and clusters close to it) out."""
    gap = _gap(body, settings, store, loaded)
    ignore_gap(store, gap)
    store.audit(actor(request), "review_ignore", gap=gap["id"])
    return {"gap_id": gap["id"], "action": "ignored", "questions_added": [], "article_id": None}


@router.post("/erase", response_model=EraseResponse, summary="Erase a session's or a customer's stored data",
             responses=responses(401, 403, 422, 500))
def erase(request: Request, body: EraseRequest, store: FeedbackDep) -> dict:
    """A data-subject request: every stored row of the session (feedback, suggestion log, help-centre events),
    or of the customer (the suggestion log rows naming them, and their sessions)."""
    if not body.session_id and not body.customer_id:
        raise ApiError(422, "invalid_request", "give session_id or customer_id")
    ref = customer_ref({"id": body.customer_id}) if body.customer_id else None
    erased = store.erase(body.session_id, ref)
    store.audit(actor(request), "erase", by="session" if body.session_id else "customer", erased=erased)
    return {"erased": erased}


@router.get("/audit", response_model=AuditLog, summary="The audit log of admin actions", responses=responses(401, 403, 422, 500))
def audit_log(
    store: FeedbackDep,
    since: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,3}[dhm]$", description="the period up to now: 30d, 24h")] = "30d",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict:
    """Reloads, feedback exports, reviews and their fixes, erasures (and the CLI's purge and rekey), newest first."""
    from assist.helpreport import parse_since

    entries = store.audit_entries(parse_since(since).isoformat(timespec="milliseconds"), limit=limit)
    return {"entries": [e.__dict__ for e in entries]}
