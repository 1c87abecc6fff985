import logging

from fastapi import APIRouter, Depends

from api.auth import require_admin
from api.deps import MetricsDep, ServiceDep
from api.errors import ApiError, responses
from api.schemas import ReloadResponse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/reload", response_model=ReloadResponse, summary="Serve the CURRENT index version",
             responses=responses(401, 403, 409, 500))
def reload_index(service: ServiceDep, metrics: MetricsDep) -> dict:
    """Load the version `index_dir/CURRENT` names, then swap to it; requests in flight finish on the old one.

    A version that fails to load (missing, broken, built for another model) leaves the old one serving: 409.
    """
    try:
        result = service.reload()
    except Exception as exc:  # whatever broke in the new files, the old version keeps serving
        metrics.reloads.labels("error").inc()
        log.error("index reload failed, still serving %s: %s: %s", service.version, type(exc).__name__, exc)
        raise ApiError(409, "reload_failed", f"the CURRENT index could not be loaded ({type(exc).__name__}: {exc}); "
                                             f"still serving {service.version or 'nothing'}") from None
    metrics.reloads.labels("changed" if result.changed else "unchanged").inc()
    metrics.set_index_version(service.version)  # the served one, even if another reload finished after ours
    return {"previous": result.previous, "current": result.current, "changed": result.changed, "seconds": result.seconds}
