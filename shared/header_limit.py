"""Refuses requests whose headers are too large or too many with a 431 problem (RFC 6585)."""

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.problems import problem_response

# Browsers send a few KiB; the largest legitimate header here is a token (at most 8 KiB).
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_COUNT = 100


class HeaderLimitMiddleware:
    """Counts names and values of all request headers; over either limit, nothing else runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES:
                response = problem_response(
                    scope,
                    431,
                    f"The request's headers are too large: at most {MAX_HEADER_COUNT} headers "
                    f"and {MAX_HEADER_BYTES} bytes in all",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
