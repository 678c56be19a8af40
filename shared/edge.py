"""The request's edge: everything a request meets between the server and the routes, in one pass.

In the order a request meets them: CORS (a preflight is answered here, by Starlette's CORS
middleware built from the OpenAPI document), the request's id and its log line, the header
limits (431), the body limits (400, 413), the bearer token for `/api/` (401, or 503 when it
cannot be checked now), and HEAD answered as GET. On the way out every response gets the
request id, the CORS headers, the security headers and, while draining, `Connection: close`,
problem responses made here included.

One middleware instead of eight: each layer cost a call, a closure and a pass over the
headers per request (bench/middleware.py measures it). So the request's headers are read in
one loop, and each request has one `send` wrapper and one `receive` wrapper.
"""

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import PROTECTED_PREFIX, bearer_token
from shared.cors import documented_cors
from shared.docs import REDOC_PATH, SWAGGER_UI_PATH
from shared.drain import Drain
from shared.problems import (
    PROBLEM_MEDIA_TYPE,
    RETRY_AFTER_SECONDS,
    internal_error_body,
    problem_response,
)
from shared.tokens import TokenRejectedError, TokenVerifier, VerificationUnavailableError

# Browsers send a few KiB; the largest legitimate header here is a token (at most 8 KiB).
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_COUNT = 100
MAX_BODY_BYTES = 64 * 1024

# A client's id is kept only when it is short and plain, so it cannot forge log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=~-]{0,127}")

# Everything the API answers is JSON (or a script or style sheet of the documentation), which
# needs the browser to run or load nothing at all.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The two documentation pages are HTML that loads the service's own assets: each sets the policy
# that allows exactly that (shared/docs.py). No other path may loosen the API's.
DOCUMENTATION_PAGES = frozenset({SWAGGER_UI_PATH, REDOC_PATH})

# No MIME sniffing, no framing, no referrer, no opener; each replaces what a route set.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_CSP = (b"content-security-policy", API_POLICY.encode())
# A task list is personal: no shared or browser cache keeps a copy. Clients that keep their own
# can still revalidate it with If-None-Match. A route may set its own (the documentation's).
_NO_STORE = (b"cache-control", b"no-store")
# Production is served over HTTPS.
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# While draining, clients and balancers leave their keep-alive connections (uvicorn honours it).
_CLOSE = (b"connection", b"close")

# The request headers the edge reads; the first of each counts.
_READ = frozenset(
    {
        b"x-request-id",
        b"content-length",
        b"authorization",
        b"origin",
        b"access-control-request-method",
    }
)


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The body is larger than {max_bytes} bytes")


class EdgeMiddleware:
    """CORS, request id and log line, header and body limits, the bearer token, HEAD as GET,
    security headers and the drain's `Connection: close`, as one pure-ASGI middleware."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        drain: Drain,
        production: bool,
        document: Callable[[], Mapping[str, Any]],
        cors_origins: Sequence[str],
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.drain = drain
        self.max_body_bytes = max_body_bytes
        # Bound once, when the stack is built (create_app has configured logging by then):
        # structlog's module-level proxy builds its logger anew for each line, 7 µs a line.
        self.log = structlog.get_logger(__name__).bind()
        # Starlette's CORS middleware holds the policy and writes its headers; it is not a layer
        # of its own here (it would have to sit between the security headers and the request id,
        # splitting this pass in two), so the edge calls its preflight and response parts.
        self.cors: CORSMiddleware = documented_cors(app, document=document, origins=cors_origins)
        self.always = (*_SECURITY_HEADERS, _HSTS) if production else _SECURITY_HEADERS
        self.replaced = frozenset(name for name, _ in (*self.always, _CSP))
        self.replaced_draining = self.replaced | {_CLOSE[0]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope["headers"]
        size = 0
        read: dict[bytes, bytes] = {}
        for name, value in raw_headers:
            size += len(name) + len(value)
            if name in _READ and name not in read:
                read[name] = value
        method = scope["method"]
        documentation_page = scope["path"] in DOCUMENTATION_PAGES
        origin = read.get(b"origin")
        if origin is not None and method == "OPTIONS" and b"access-control-request-method" in read:
            # A preflight is CORS's alone, as when CORS was the outer layer: no id, no log line.
            preflight = self.cors.preflight_response(request_headers=Headers(scope=scope))

            async def send_preflight(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = self._secured(message["headers"], documentation_page)
                await send(message)

            await preflight(scope, receive, send_preflight)
            return

        started = time.perf_counter()
        request_id = _request_id(read.get(b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        encoded_id = request_id.encode()
        head = method == "HEAD"
        status = 500
        response_started = False
        received = 0
        max_body_bytes = self.max_body_bytes

        async def send_out(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", encoded_id)]
                message["headers"] = self._secured(headers, documentation_page)
                # Starlette's CORS headers (and `Vary: Origin`, with or without an Origin).
                await self.cors.send(message, send, Headers(raw=raw_headers))
                return
            if head and message["type"] == "http.response.body":
                # HEAD answers as GET without the content; `Content-Length` stays GET's.
                message = {**message, "body": b""}
            await send(message)

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    # Raised inside request.body(), so the app's handler answers with a problem.
                    raise BodyTooLarge(max_body_bytes)
            return message

        # FastAPI routes only the methods a route names, and naming HEAD on every GET route
        # would document a second operation for each; so HEAD is routed as GET here. A copy:
        # the server keeps reading the method from the scope it passed in.
        routed = {**scope, "method": "GET"} if head else scope
        try:
            refusal = await self._refusal(scope, read, size, len(raw_headers))
            if refusal is not None:
                await refusal(scope, receive, send_out)
            else:
                await self.app(routed, receive_within_limit, send_out)
        except Exception:
            self.log.exception("request.failed", method=method, path=scope["path"])
            if response_started:
                raise
            await _send_internal_error(scope, send_out)
        finally:
            route = routed.get("route")
            self.log.info(
                "request.completed",
                method=method,
                route=getattr(route, "path", None),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                user_id=scope["state"].get("user_id"),
            )
            structlog.contextvars.clear_contextvars()

    async def _refusal(
        self, scope: Scope, read: dict[bytes, bytes], size: int, count: int
    ) -> ASGIApp | None:
        """The problem response that refuses this request, checked in order (header limits,
        body limits, the token), or None when the routes may have it."""
        if count > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES:
            return problem_response(
                scope,
                431,
                f"The request's headers are too large: at most {MAX_HEADER_COUNT} headers "
                f"and {MAX_HEADER_BYTES} bytes in all",
            )
        # A declared length over the limit is refused at once; a body without one (chunked) is
        # counted as it arrives (receive_within_limit) and refused once it passes the limit.
        length = read.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return problem_response(scope, 400, "Content-Length must be a number")
            if int(length) > self.max_body_bytes:
                return problem_response(scope, 413, BodyTooLarge(self.max_body_bytes).detail)
        if not scope["path"].startswith(PROTECTED_PREFIX):
            return None
        # Before a body is read or a database connection taken: a bad token costs nothing.
        encoded = read.get(b"authorization")
        authorization = None if encoded is None else encoded.decode("latin-1")
        try:
            user = await self.verifier.verify(bearer_token(authorization))
        except VerificationUnavailableError as outage:
            self.log.warning("auth.unavailable", kind=type(outage).__name__, reason=str(outage))
            retry_after = outage.retry_after or RETRY_AFTER_SECONDS
            return problem_response(
                scope, 503, outage.detail, headers={"Retry-After": str(retry_after)}
            )
        except TokenRejectedError as refused:
            self.log.info("auth.refused", reason=str(refused))
            challenge = 'Bearer error="invalid_token"' if authorization else "Bearer"
            return problem_response(
                scope, 401, str(refused), headers={"WWW-Authenticate": challenge}
            )
        state = scope["state"]
        state["user"] = user
        state["user_id"] = user.id
        return None

    def _secured(
        self, headers: list[tuple[bytes, bytes]], documentation_page: bool
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with the security headers (and the drain's) in place."""
        draining = self.drain.draining
        replaced = self.replaced_draining if draining else self.replaced
        kept = []
        has_cache_control = has_policy = False
        for pair in headers:
            name = pair[0]
            if name == b"cache-control":
                has_cache_control = True
            elif name == b"content-security-policy" and documentation_page:
                has_policy = True
            elif name in replaced:
                continue
            kept.append(pair)
        kept.extend(self.always)
        if not has_policy:
            kept.append(_CSP)
        if not has_cache_control:
            kept.append(_NO_STORE)
        if draining:
            kept.append(_CLOSE)
        return kept


def _request_id(given: bytes | None) -> str:
    """The client's `X-Request-ID` when it is sane, else a new one."""
    if given is not None:
        candidate = given.decode("latin-1")
        if _SANE_REQUEST_ID.fullmatch(candidate):
            return candidate
    return uuid.uuid4().hex


async def _send_internal_error(scope: Scope, send: Send) -> None:
    body = internal_error_body(scope)
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
