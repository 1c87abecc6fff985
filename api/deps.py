"""Dependencies as Annotated aliases: what a route needs, taken from the app's state.

They are `async def`: each only reads app state, and FastAPI runs a plain `def` dependency in the
thread pool, one hop per dependency per request."""

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import Metrics
from api.service import Loaded, Service
from assist.config import Settings
from assist.feedback import FeedbackStore


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _service(request: Request) -> Service:
    return request.app.state.service


async def _loaded(request: Request) -> Loaded:
    return request.app.state.service.require()


async def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def _feedback(request: Request) -> FeedbackStore:
    return request.app.state.feedback


SettingsDep = Annotated[Settings, Depends(_settings)]
ServiceDep = Annotated[Service, Depends(_service)]
LoadedDep = Annotated[Loaded, Depends(_loaded)]  # one index snapshot for the whole request; 503 if none
MetricsDep = Annotated[Metrics, Depends(_metrics)]
FeedbackDep = Annotated[FeedbackStore, Depends(_feedback)]
