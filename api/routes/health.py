"""Probes and metrics: open, no credentials (bind the port to a private network)."""

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Response

from api.deps import FeedbackDep, MetricsDep, ServiceDep
from api.errors import ApiError, responses
from api.schemas import HealthResponse, ReadyResponse
from assist.helpreport import deflection_rate

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is alive")
async def healthz() -> dict:  # async: a probe needs no thread-pool hop
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyResponse, summary="An index is loaded and requests can be served",
            responses=responses(503))
async def readyz(service: ServiceDep) -> dict:
    loaded = service.current
    if loaded is None:
        raise ApiError(503, "not_ready", "no index loaded yet")
    since = datetime.fromtimestamp(loaded.since, timezone.utc).isoformat(timespec="milliseconds")
    return {"status": "ready", "index_version": loaded.version, "serving_since": since}


@router.get("/metrics", include_in_schema=False)
def metrics(m: MetricsDep, store: FeedbackDep) -> Response:
    since = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat(timespec="milliseconds")
    rate = deflection_rate(store.help_events(since))
    m.deflection.set(float("nan") if rate is None else rate)
    return Response(m.render(), media_type=m.content_type)
