"""Response headers that suit a JSON API holding personal data (OWASP REST Security)."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.docs import REDOC_PATH, SWAGGER_UI_PATH

# Everything the API answers is JSON (or a script or style sheet of the documentation), which
# needs the browser to run or load nothing at all.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The two documentation pages are HTML that loads the service's own assets: each sets the policy
# that allows exactly that (shared/docs.py). No other path may loosen the API's.
DOCUMENTATION_PAGES = frozenset({SWAGGER_UI_PATH, REDOC_PATH})


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
        documentation_page = scope["path"] in DOCUMENTATION_PAGES

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                if documentation_page:
                    headers.setdefault("Content-Security-Policy", API_POLICY)
                else:
                    headers["Content-Security-Policy"] = API_POLICY
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                # A task list is personal: no shared or browser cache keeps a copy. Clients that
                # keep their own can still revalidate it with If-None-Match.
                headers.setdefault("Cache-Control", "no-store")
                if self.production:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)
