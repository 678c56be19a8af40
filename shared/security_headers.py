"""Response headers that suit a JSON API holding personal data (OWASP REST Security)."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The interactive documentation is an HTML page that loads its scripts and styles from a CDN;
# everything else is JSON, which needs no content at all.
DOCUMENTATION_PATHS = ("/docs", "/redoc")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
DOCUMENTATION_POLICY = "frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Adds to every response: no MIME sniffing, no framing, no referrer, no caching of
    personal data by browsers or proxies, and HSTS in production (served over HTTPS)."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        documentation = scope["path"].startswith(DOCUMENTATION_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Content-Security-Policy"] = (
                    DOCUMENTATION_POLICY if documentation else API_POLICY
                )
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                # A task list is personal: no shared or browser cache keeps a copy. Clients that
                # keep their own can still revalidate it with If-None-Match.
                headers.setdefault("Cache-Control", "no-store")
                if self.production:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)
