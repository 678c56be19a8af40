"""Refuses request bodies over a size limit with a 413 problem, before they are buffered."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import problem_response

MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The body is larger than {max_bytes} bytes")


class BodyLimitMiddleware:
    """A declared `Content-Length` over the limit is refused at once; a body without one
    (chunked) is counted as it arrives and refused as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    response = problem_response(scope, 400, "Content-Length must be a number")
                    await response(scope, receive, send)
                    return
                if int(value) > self.max_bytes:
                    error = BodyTooLarge(self.max_bytes)
                    response = problem_response(scope, 413, error.detail)
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside request.body(), so the app's handler answers with a problem.
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
