"""CORS as the OpenAPI document says: a page on an allowed origin may send every request header
an operation documents and read every response header a response documents.

The lists are read from the app's own document when the middleware stack is built (the first
request or the lifespan's start, after every route is registered), so a header a slice declares
later is granted without editing this file or main.py. Building the document then costs nothing
extra: FastAPI keeps it for `/openapi.json`.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Every JSON body is sent with it, and frontends also send it on GET and DELETE.
CONTENT_TYPE = "Content-Type"
# Headers a page must never read, whatever a document declares (the Fetch standard hides
# Set-Cookie from scripts anyway; exposing it would only invite a mistake).
NEVER_EXPOSED = frozenset({"set-cookie", "set-cookie2"})
PREFLIGHT_CACHE_SECONDS = 600


@dataclass(frozen=True)
class CorsGrant:
    """What a browser is allowed: methods and headers to send, headers to read."""

    methods: list[str]
    request_headers: list[str]
    response_headers: list[str]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> "CorsGrant":
        methods: list[str] = []
        request_headers: list[str] = [*_security_scheme_headers(document), CONTENT_TYPE]
        response_headers: list[str] = []
        for path_item in document.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in HTTP_METHODS:
                    continue
                methods.append(method.upper())
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "header":
                        request_headers.append(parameter["name"])
                for response in operation.get("responses", {}).values():
                    response_headers.extend(response.get("headers", {}))
        exposable = (h for h in response_headers if h.lower() not in NEVER_EXPOSED)
        return cls(_unique(methods), _unique(request_headers), _unique(exposable))


def _security_scheme_headers(document: Mapping[str, Any]) -> list[str]:
    """The headers the document's security schemes are sent in (`Authorization` for a bearer
    token)."""
    headers = []
    for scheme in document.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("type") in {"http", "oauth2", "openIdConnect"}:
            headers.append("Authorization")
        elif scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            headers.append(scheme["name"])
    return headers


def _unique(names: Iterable[str]) -> list[str]:
    """Each name once (header names compare without case), in the order first seen."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def documented_cors(
    app: ASGIApp, /, *, document: Callable[[], Mapping[str, Any]], origins: Sequence[str]
) -> CORSMiddleware:
    """Starlette's CORS middleware, granting what `document()` declares to `origins` (with
    credentials, so never to `*`)."""
    grant = CorsGrant.from_document(document())
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=grant.methods,
        allow_headers=grant.request_headers,
        expose_headers=grant.response_headers,
        max_age=PREFLIGHT_CACHE_SECONDS,
    )
