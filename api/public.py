"""The public routes' guard: client address (X-Forwarded-For only from trusted proxies), a token bucket
per address (429 + Retry-After), and CORS for the configured shop origins.

It is plain ASGI and runs before routing, so a flood from one address costs a dictionary lookup per
request and never reaches retrieval. Buckets live in the process: with several workers or replicas
each keeps its own, so the effective limit is per process (put a limit in the load balancer too).
"""

import ipaddress
import math
import threading
import time
from collections import OrderedDict

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.metrics import Metrics
from assist.errors import AssistError

PUBLIC_PREFIXES = ("/v1/public/", "/help/contact")
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type, X-Help-Session"


class TokenBucket:
    """Per-key token buckets: `rate` tokens a second up to `burst`; one request takes one token.
    At most `max_keys` buckets are kept (least recently used go first: an idle bucket is full anyway)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000, clock=time.monotonic):
        self.rate, self.burst, self.max_keys, self.clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until a token is back."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if tokens >= 1 else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


def parse_networks(text: str) -> tuple:
    """Addresses and networks from a comma-separated setting (AssistError names a bad one)."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise AssistError(f"ASSIST_PUBLIC_TRUSTED_PROXIES: {part!r} is not an address or network") from None
    return tuple(out)


def client_address(scope: Scope, trusted: tuple) -> str:
    """The connecting address, or, when that is a trusted proxy, the nearest untrusted address in
    X-Forwarded-For (read right to left: entries left of the proxies are whatever the client sent)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = Headers(scope=scope).get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            return hop if _valid(hop) else peer
    return peer


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return False


def _trusted(address: str, trusted: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


class PublicGuard:
    def __init__(self, app: ASGIApp, bucket: TokenBucket, trusted: tuple, origins: tuple[str, ...], metrics: Metrics):
        self.app, self.bucket, self.trusted, self.metrics = app, bucket, trusted, metrics
        self.origins = frozenset(o.rstrip("/") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        allowed = origin if origin is not None and origin.rstrip("/") in self.origins else None
        if scope["method"] == "OPTIONS" and origin is not None:  # a CORS preflight
            await self._preflight(allowed, scope, receive, send)
            return
        wait = self.bucket.take(client_address(scope, self.trusted))
        if wait > 0:
            self.metrics.public_limited.inc()
            seconds = max(1, math.ceil(wait))
            reply = error_response(429, "rate_limited", f"too many requests from this address; try again in {seconds} s",
                                   headers={"Retry-After": str(seconds)})
            await reply(scope, receive, _with_cors(send, allowed))
            return
        await self.app(scope, receive, _with_cors(send, allowed))

    async def _preflight(self, allowed: str | None, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if allowed is not None:
            headers += [(b"access-control-allow-origin", allowed.encode("latin-1")),
                        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                        (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                        (b"access-control-max-age", b"600")]
        await send({"type": "http.response.start", "status": 204 if allowed else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, allowed: str | None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.add_vary_header("Origin")
            if allowed is not None:
                headers["Access-Control-Allow-Origin"] = allowed
        await send(message)

    return wrapped
