"""Every error leaves the API as JSON: {"error": {"code", "message"[, "details"]}}.

`install_error_handlers` registers the one mapping for library errors (AssistError), request validation
and HTTP errors; unexpected exceptions are caught in `api.middleware.Observe`, which logs them redacted.
"""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorResponse
from assist.errors import AssistError, IndexMismatch, IndexNotFound, KBValidationError, ModelError, TemplateError

# Library errors -> (status, code). Anything not listed is the caller's problem: 400.
ASSIST_ERRORS: list[tuple[type[AssistError], int, str]] = [
    (IndexNotFound, 503, "index_not_loaded"),
    (ModelError, 503, "model_unavailable"),
    (IndexMismatch, 409, "index_mismatch"),
    (KBValidationError, 422, "kb_invalid"),
    (TemplateError, 422, "template_error"),
]

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}


class ApiError(Exception):
    """An error the API answers with a status and a stable code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, details: list[dict] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


def assist_error_response(exc: AssistError) -> JSONResponse:
    for cls, status, code in ASSIST_ERRORS:
        if isinstance(exc, cls):
            return error_response(status, code, str(exc))
    return error_response(400, "bad_request", str(exc))


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return api_error_response(exc)


async def _assist_error(request: Request, exc: AssistError) -> JSONResponse:
    return assist_error_response(exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (e.get("ctx") or {}).get("error", "malformed JSON")
        return error_response(422, "invalid_json", f"the body is not valid JSON: {reason} (at character {_field(e['loc'])})")
    # The offending input is left out on purpose: it may carry personal data and is already the caller's.
    # Our validators' messages are written for people: without pydantic's "Value error, " prefix.
    details = [{"field": _field(e["loc"]), "message": e["msg"].removeprefix("Value error, ")} for e in errors[:20]]
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return error_response(422, "invalid_request", f"{first['field']}: {first['message']}{more}", details)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AssistError, _assist_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def responses(*statuses: int) -> dict:
    """OpenAPI entries for the error statuses an operation can answer with."""
    return {s: {"model": ErrorResponse, "description": HTTP_CODES.get(s, "error").replace("_", " ")} for s in statuses}
