"""The interactive documentation (/docs, Swagger UI; /redoc, ReDoc), served whole by the service.

Their scripts and styles come from the `fastapi-standalone-docs` package (which ships Swagger
UI's and ReDoc's built assets and follows their releases), mounted under `/docs/assets`, so the
pages open on a machine without internet access and send nothing to a third party. Only its
asset folder is used: its `StandaloneDocs` helper replaces FastAPI's page functions for every app
in the process, which is more than this needs.

Each page carries a content security policy that allows exactly what it loads: scripts and styles
from the service, FastAPI's inline start-up script by its hash, and requests to the service only
(the OpenAPI document and "Try it out"). Every other response keeps `default-src 'none'`
(shared/edge.py).
"""

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import fastapi_standalone_docs
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
_ASSETS_DIRECTORY = Path(fastapi_standalone_docs.__path__[0]) / "static"

# Script elements without a `src`: the pages' inline start-up code, allowed by its digest.
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

SWAGGER_UI_POLICY = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
# ReDoc styles itself with styled-components, which writes <style> elements as it renders (without
# inline styles the page stays blank), and runs its search index in a worker made from a blob.
# Inline styles cannot run code; scripts stay limited to the service's own.
REDOC_POLICY = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)


def install_documentation(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; the app must have been made with
    `docs_url=None, redoc_url=None` so FastAPI's CDN-loading pages are not there too."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("make the app with docs_url=None and redoc_url=None")
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    app.mount(ASSETS_PATH, _Assets(directory=_ASSETS_DIRECTORY), name="documentation_assets")
    # ReDoc asks for its logo at `<its page's path>/logo-mini.svg`.
    app.mount(REDOC_PATH, _Assets(directory=_ASSETS_DIRECTORY / "redoc"), name="redoc_assets")

    @app.get(SWAGGER_UI_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/fastapi/favicon.png",
            # Bearer tokens only: no OAuth2 flow, so no redirect page.
            oauth2_redirect_url=None,
            # Operation ids are the names a generated client calls (`list_tasks`): show them.
            swagger_ui_parameters={"displayOperationId": True},
        )
        return _with_policy(page, SWAGGER_UI_POLICY)

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/fastapi/favicon.png",
            with_google_fonts=False,
        )
        return _with_policy(page, REDOC_POLICY)


class _Assets(StaticFiles):
    """The UIs' files. Unlike the API's personal data (`no-store`), browsers may keep them, and
    revalidate each use by ETag: 2 MB are sent again only after an upgrade of the package."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _with_policy(page: HTMLResponse, template: str) -> HTMLResponse:
    """The page with its content security policy, naming each inline script by its SHA-256."""
    digests = [
        hashlib.sha256(script.encode()).digest()
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    ]
    scripts = "".join(f" 'sha256-{base64.b64encode(digest).decode()}'" for digest in digests)
    page.headers["Content-Security-Policy"] = template.format(scripts=scripts)
    return page
