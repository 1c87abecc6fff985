"""API keys (X-API-Key) for agent endpoints, a bearer token for admin endpoints; constant-time checks."""

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from assist.config import Settings
from assist.crypto import Cipher
from assist.errors import AssistError

log = logging.getLogger(__name__)

DEV_API_KEY = "dev-key"
DEV_ADMIN_TOKEN = "dev-admin"

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an agent API key from ASSIST_API_KEYS")
bearer = HTTPBearer(auto_error=False, description="the admin token from ASSIST_ADMIN_TOKEN")


@dataclass(frozen=True)
class Credentials:
    api_keys: tuple[bytes, ...] = field(repr=False)
    admin_tokens: tuple[bytes, ...] = field(repr=False)


def credentials_from_settings(s: Settings) -> Credentials:
    """The accepted secrets; AssistError when the service must not start with this configuration."""
    keys = [k.strip() for k in s.api_keys.split(",") if k.strip()]
    admin = [s.admin_token.strip()] if s.admin_token.strip() else []
    if s.dev_mode:
        keys.append(DEV_API_KEY)
        admin.append(DEV_ADMIN_TOKEN)
    else:
        if not keys:
            raise AssistError("no API keys configured: set ASSIST_API_KEYS (comma-separated), "
                              "or ASSIST_DEV_MODE=1 / `assist serve --dev` for local development")
        if DEV_API_KEY in keys or DEV_ADMIN_TOKEN in admin:
            raise AssistError("the development key or admin token is configured outside development mode; "
                              "choose real secrets for ASSIST_API_KEYS and ASSIST_ADMIN_TOKEN")
        if not s.store_key.strip():  # customer text is never written to disk in the clear outside development
            raise AssistError("no store key configured: set ASSIST_STORE_KEY (make one with `assist db new-key`) so customer text "
                              "is encrypted at rest, or ASSIST_DEV_MODE=1 / `assist serve --dev` for local development")
        Cipher(s.store_key)  # a malformed key fails here, with its message, not at the first write
    return Credentials(tuple(k.encode() for k in keys), tuple(t.encode() for t in admin))


def warn_about(s: Settings) -> None:
    """Log what an operator must know about the configured credentials."""
    if s.dev_mode:
        log.warning("DEVELOPMENT MODE: the key %r and the admin token %r are accepted; never run this in production",
                    DEV_API_KEY, DEV_ADMIN_TOKEN)
        if not s.store_key.strip():
            log.warning("DEVELOPMENT MODE without ASSIST_STORE_KEY: customer text is stored unencrypted")
    elif not s.admin_token.strip():
        log.warning("ASSIST_ADMIN_TOKEN is not set: admin endpoints (reload, feedback export) refuse every request")


def actor(request: Request) -> str:
    """Who made an admin request, for the audit log: the address (and any X-Forwarded-For) and a fingerprint of
    the token (so a rotated token shows as a different caller), never the token itself."""
    auth = request.headers.get("authorization", "")
    token = auth.split(" ", 1)[1].strip() if " " in auth else ""
    who = f"api {request.client.host if request.client else '?'}"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        who += f" (forwarded for {forwarded[:100]})"
    return who + f" token {hashlib.sha256(token.encode()).hexdigest()[:8]}"


def _matches(given: str, secrets: tuple[bytes, ...]) -> bool:
    candidate = given.encode("utf-8", "replace")
    found = False
    for secret in secrets:  # no early exit: the time taken does not tell which key matched
        found |= hmac.compare_digest(candidate, secret)
    return found


def _credentials(request: Request) -> Credentials:
    return request.app.state.credentials


def valid_api_key(key: str | None, creds: Credentials) -> bool:
    return bool(key) and _matches(key, creds.api_keys)


async def require_api_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> None:
    """Dependency of the agent endpoints: 401 without a valid X-API-Key."""
    if not key:
        raise ApiError(401, "unauthorized", "missing API key: send it in the X-API-Key header")
    if not valid_api_key(key, _credentials(request)):
        raise ApiError(401, "unauthorized", "invalid API key")


async def require_admin(request: Request, auth: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> None:
    """Dependency of the admin endpoints: 401 without a valid bearer token, 403 for an agent key."""
    creds = _credentials(request)
    if auth is not None and _matches(auth.credentials, creds.admin_tokens):
        return
    key = request.headers.get("x-api-key")
    if key and _matches(key, creds.api_keys):
        raise ApiError(403, "forbidden", "an API key cannot call admin endpoints: send Authorization: Bearer <admin token>")
    challenge = {"WWW-Authenticate": "Bearer"}
    if auth is None:
        raise ApiError(401, "unauthorized", "missing admin token: send Authorization: Bearer <admin token>", challenge)
    raise ApiError(401, "unauthorized", "invalid admin token", challenge)
