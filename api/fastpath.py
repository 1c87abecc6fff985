"""POST /v1/suggest without the framework's per-request machinery, for the requests that need none of it.

The agent sidebar calls /v1/suggest on every customer message, and on this path FastAPI's routing
(matching every route in turn), dependency solving, request objects and exception middleware cost about
0.6 ms of the event loop per request, more than everything else in the HTTP layer together
(bench/README.md, "HTTP overhead"). `FastSuggest` sits inside Observe and BodyGuard (so the request is
counted, size- and type-checked as any other) and answers a request itself only when it is plainly
valid: a known API key, a body the SuggestRequest model accepts. Anything else (no or a wrong key, a
body that fails validation) goes on to the FastAPI route unchanged, which produces the documented
error from the one place errors are made. Both run the same `run_suggest`.
"""

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import valid_api_key
from api.errors import ApiError, api_error_response, assist_error_response
from api.middleware import replay
from api.routes.suggest import router, run_suggest
from api.schemas import SuggestRequest
from assist.errors import AssistError

PATH = "/v1/suggest"


class FastSuggest:
    def __init__(self, app: ASGIApp, api: FastAPI):
        self.app = app
        self.api = api
        # The route FastAPI would have matched: Observe labels the request by it, as any other.
        self.route = next(r for r in router.routes if r.path == PATH and "POST" in r.methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = self.api.state
        if not valid_api_key(Headers(scope=scope).get("x-api-key"), state.credentials):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:  # BodyGuard has read and checked it already: this is its replay
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            request = SuggestRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replay(body, receive), send)
            return
        scope["route"] = self.route
        try:
            response = await run_suggest(request, state)
        except ApiError as exc:
            response = api_error_response(exc)
        except AssistError as exc:
            response = assist_error_response(exc)
        await response(scope, receive, send)

