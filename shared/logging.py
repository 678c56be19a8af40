"""structlog configuration, and what the OpenAPI document says of request ids (the edge,
shared/edge.py, gives each request its id and its log line)."""

import logging
import re
import sys
from typing import Any, TextIO

import structlog

from shared.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# Belt and braces: even if someone logs one of these keys, its value never reaches the output.
_SECRET_KEYS = frozenset({"authorization", "token", "secret", "password", "cookie"})

log = structlog.get_logger()

_REQUEST_ID_PARAMETER = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "Your id for this request, to find it in the service's logs: kept when it is "
    "1 to 128 of `A-Z a-z 0-9 . _ : + = ~ -` starting with a letter or digit, otherwise replaced "
    "by one the service makes. Either way it comes back in `X-Request-ID`.",
    "schema": {"type": "string"},
}
_REQUEST_ID_RESPONSE_HEADER = {
    "description": "The request's id (yours if it was kept), also in a problem's `request_id`.",
    "required": True,
    "schema": {"type": "string"},
}


def _redact_secrets(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key in event_dict.keys() & _SECRET_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


# What a JWT looks like (its header is base64url JSON, so it starts with "eyJ"), wherever it
# turns up: an exception's message, a URL, a value logged by a library.
_JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
# Better Auth's session tokens have no telltale prefix: a signed one (the bearer plugin's
# `set-auth-token`) is 32 letters and digits, a dot and a base64 HMAC-SHA256; a bare one is
# recognisable only where it follows "Bearer", as anything after that word is a credential.
_SIGNED_SESSION_TOKEN = re.compile(r"[A-Za-z0-9]{32}\.[A-Za-z0-9+/_-]{43}=?")
_AFTER_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
# Any of the three, to look once: most values (a path, a status, an id) hold none of them.
_ANY_TOKEN = re.compile(
    "|".join(f"(?:{pattern.pattern})" for pattern in (_JWT_SHAPED, _SIGNED_SESSION_TOKEN))
    + r"|(?i:bearer\s)"
)


def _scrubber(secrets: list[str]) -> structlog.types.Processor:
    """Removes token-shaped text and the configured secrets from every text value of a line,
    tracebacks included, for what slips past the key-based redaction."""

    def scrub(
        _logger: object, _method: str, event_dict: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        for key, value in event_dict.items():
            if isinstance(value, str):
                if _ANY_TOKEN.search(value):
                    value = _JWT_SHAPED.sub("[redacted token]", value)
                    value = _SIGNED_SESSION_TOKEN.sub("[redacted token]", value)
                    value = _AFTER_BEARER.sub(r"\1[redacted token]", value)
                for secret in secrets:
                    if secret in value:
                        value = value.replace(secret, "[redacted]")
                event_dict[key] = value
        return event_dict

    return scrub


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """JSON lines in production, a readable console in development, for ours and uvicorn's logs."""
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    # Tracebacks become text before the scrubber runs, so that it reaches them too.
    shared_processors.append(structlog.processors.format_exc_info)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.renders_json_logs
        else structlog.dev.ConsoleRenderer()
    )
    secret = settings.better_auth_secret
    secrets = [secret.get_secret_value()] if secret is not None else []
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Each module's logger is bound once, not on every call (7 µs a line). Safe across
        # reconfiguration (the tests reconfigure often): this chain does not depend on the
        # settings, and everything that does (the scrubber, the renderer, the stream) is the
        # handler's below, which is replaced in place on the root logger.
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _scrubber(secrets),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The HTTP client logs every URL it requests at INFO; the key-set fetch logs its own event.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at INFO on every start; only its upgrades matter.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Our own request line replaces uvicorn's access log, which lacks the id, user and route.
    logging.getLogger("uvicorn.access").disabled = True


def document_request_id(openapi: dict[str, Any]) -> dict[str, Any]:
    """State in the OpenAPI document what the edge middleware (shared/edge.py) does on every
    route: it takes an optional `X-Request-ID` and returns one on every response."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue  # a path item's own summary or parameters, not an operation
            operation.setdefault("parameters", []).append(dict(_REQUEST_ID_PARAMETER))
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})[REQUEST_ID_HEADER] = dict(
                    _REQUEST_ID_RESPONSE_HEADER
                )
    return openapi
