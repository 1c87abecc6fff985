from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.auth import actor, require_admin, require_api_key
from api.deps import FeedbackDep, MetricsDep, SettingsDep
from api.errors import responses
from api.routes.suggest import check_turns
from api.schemas import FeedbackCreated, FeedbackEventName, FeedbackEventOut, FeedbackExport, FeedbackRequest
from assist.feedback import FeedbackEvent

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post(
    "",
    status_code=201,
    response_model=FeedbackCreated,
    summary="Record what the agent did with a suggestion",
    dependencies=[Depends(require_api_key)],
    responses=responses(400, 401, 413, 415, 422, 500),
)
def add_feedback(body: FeedbackRequest, store: FeedbackDep, settings: SettingsDep, metrics: MetricsDep) -> dict:
    """Store a shown / used / dismissed / edited event; conversation and text are stored with personal data redacted."""
    if body.conversation is not None:
        check_turns(body.conversation, settings)
    stored = store.add(
        FeedbackEvent(
            event=body.event, suggestion_id=body.suggestion_id, kind=body.kind, intent=body.intent,
            index_version=body.index_version, latency_ms=body.latency_ms, session_id=body.session_id,
            conversation=None if body.conversation is None else tuple({"role": t.role, "text": t.text} for t in body.conversation),
            text=body.text, request_id=body.request_id, arm=body.arm, event_id=body.event_id,
        )
    )
    if not stored.duplicate:
        metrics.feedback.labels(body.event).inc()
    return {"id": stored.id, "event": stored.event, "created_at": stored.created_at, "duplicate": stored.duplicate}


@router.get(
    "/export",
    response_model=FeedbackExport,
    summary="Read stored feedback back (admin)",
    dependencies=[Depends(require_admin)],
    responses=responses(401, 403, 422, 500),
)
def export_feedback(
    request: Request,
    store: FeedbackDep,
    event: Annotated[FeedbackEventName | None, Query(description="only this event type")] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62, description="return events with a larger id (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict:
    """Stored events, oldest first, already redacted. Page with `after_id` = the previous `next_after_id`."""
    rows = store.events(event=event, after_id=after_id, limit=limit)
    store.audit(actor(request), "feedback_export", event=event, after_id=after_id, rows=len(rows))
    events = [FeedbackEventOut(**asdict(r)) for r in rows]
    return {"events": events, "next_after_id": rows[-1].id if len(rows) == limit else None}
