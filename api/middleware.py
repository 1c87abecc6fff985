"""Plain ASGI middleware: request accounting and last-resort errors (Observe), body checks (BodyGuard)."""

import logging
import re
import traceback
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.metrics import Metrics
from assist.redact import redact

log = logging.getLogger(__name__)

BODY_METHODS = ("POST", "PUT", "PATCH")


class Observe:
    """Counts every response by route template and status; turns an unexpected exception into a JSON 500.

    The exception is logged with personal data redacted and not re-raised, so no stack trace reaches a
    client and the server does not log it a second time.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: Sequence[tuple[re.Pattern, str]] = ()):
        self.app = app
        self.metrics = metrics
        self.templates = templates  # (path regex, template) to name requests rejected before routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, started = 499, False  # 499 (client closed the request) unless a response or an error comes

        async def send_and_watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            # Redacted here, not only by handler filters: the message may quote a customer's words.
            log.error("unexpected error on %s %s\n%s", scope["method"], self._route(scope), redact(traceback.format_exc()))
            status = 500
            if not started:
                await error_response(500, "internal_error", "an unexpected error occurred; it has been logged")(scope, receive, send)
        finally:
            self.metrics.requests.labels(self._route(scope), scope["method"], str(status)).inc()

    def _route(self, scope: Scope) -> str:
        # The template (/v1/articles/{article_id}), never the raw path: label values must stay few.
        path = getattr(scope.get("route"), "path", None)
        if path is None:  # rejected before routing (413, 415): find the route it was meant for
            path = next((t for regex, t in self.templates if regex.match(scope["path"])), "unmatched")
        return path


class BodyGuard:
    """Reads a request body up to `max_bytes` before anything parses it, then checks type and encoding.

    413 when Content-Length or the streamed bytes pass the limit; 415 for a body that is not JSON;
    422 for bytes that are not UTF-8. The checked body is replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        too_large = error_response(413, "body_too_large", f"the request body is larger than {self.max_bytes} bytes")
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await error_response(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:  # a lying or absent Content-Length (chunked upload)
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                shown = media or "none"
                await error_response(415, "unsupported_media_type", f"send the body as application/json (got {shown})")(scope, receive, send)
                return
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await error_response(422, "invalid_utf8", f"the body is not valid UTF-8 (byte {exc.start})")(scope, receive, send)
                return

        await self.app(scope, replay(body, receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app the body already read, then the client's further messages."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards: disconnect notices, as usual

    return again
