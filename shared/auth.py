"""Bearer-token authentication: who is calling, whether the path is theirs, and their `users` row.

Tokens are checked by `BearerAuthMiddleware` for every path under `/api/`, before a body is read
or a database connection taken, so a bad token costs nothing and learns nothing. Handlers then
take the verified person through the `TaskOwner` dependency, and writing handlers call
`record_user` to keep the person's `users` row in step.
"""

import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import jwt
import structlog
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPBearer
from sqlalchemy import event, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import Settings
from shared.db import USER_ID_MAX_LENGTH, User, is_storable_text, utc_now
from shared.problems import problem_response

PROTECTED_PREFIX = "/api/"
MAX_TOKEN_BYTES = 8192
# RFC 6750's b64token; a JWT is three base64url segments joined by dots.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """The verified caller: `id` is the token's subject; email and name are as the token says."""

    id: str
    email: str | None
    name: str | None


class TokenRejectedError(Exception):
    """The request carries no usable token; the message says why, without quoting the token."""


class SharedSecretVerifier:
    """Verifies tokens signed with BETTER_AUTH_SECRET, using only the configured algorithms."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.jwt_secret.get_secret_value().encode()
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._options: dict[str, Any] = {
            "require": ["sub", "exp"],
            "verify_aud": settings.jwt_audience is not None,
            "verify_iss": settings.jwt_issuer is not None,
        }

    def verify(self, token: str) -> AuthenticatedUser:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                options=self._options,  # type: ignore[arg-type]
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError("The token has expired") from None
        except jwt.InvalidTokenError as error:
            raise TokenRejectedError(f"The token is invalid: {_describe(error)}") from None
        return _user_from_claims(claims)


def _describe(error: jwt.InvalidTokenError) -> str:
    if isinstance(error, jwt.InvalidSignatureError):
        return "signature verification failed"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "the signing algorithm is not accepted"
    if isinstance(error, jwt.DecodeError):
        return "it is not a well-formed JWT"
    # PyJWT's other messages name claims only, never their values.
    return str(error) or type(error).__name__


def _optional_text_claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not is_storable_text(value):
        raise TokenRejectedError(f"The token is invalid: the {name!r} claim must be a string")
    return value


def _user_from_claims(claims: Mapping[str, Any]) -> AuthenticatedUser:
    subject = claims.get("sub")
    if (
        not isinstance(subject, str)
        or not subject
        or len(subject) > USER_ID_MAX_LENGTH
        or not is_storable_text(subject)
    ):
        raise TokenRejectedError(
            f"The token is invalid: 'sub' must be a user id of 1 to {USER_ID_MAX_LENGTH} characters"
        )
    return AuthenticatedUser(
        id=subject,
        email=_optional_text_claim(claims, "email"),
        name=_optional_text_claim(claims, "name"),
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case)."""
    if authorization is None:
        raise TokenRejectedError("An Authorization: Bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenRejectedError("The Authorization header must use the Bearer scheme")
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejectedError(f"The token is longer than {MAX_TOKEN_BYTES} bytes")
    if not _B64TOKEN.fullmatch(token):
        raise TokenRejectedError("The Authorization header does not hold a bearer token")
    return token


def mint_token(
    settings: Settings,
    user_id: str,
    *,
    email: str | None = None,
    name: str | None = None,
    lifetime: timedelta = timedelta(hours=1),
    **extra_claims: Any,
) -> str:
    """A token this service accepts, signed as the frontend signs it (for development and tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
    }
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    if settings.jwt_issuer is not None:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience is not None:
        claims["aud"] = settings.jwt_audience
    claims.update(extra_claims)
    return jwt.encode(
        claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithms[0]
    )


class BearerAuthMiddleware:
    """Refuses every request under `/api/` whose bearer token does not verify, with a 401."""

    def __init__(self, app: ASGIApp, verifier: SharedSecretVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            user = self.verifier.verify(bearer_token(authorization))
        except TokenRejectedError as refusal:
            log.info("auth.refused", reason=str(refusal))
            challenge = 'Bearer error="invalid_token"' if authorization else "Bearer"
            response = problem_response(
                scope, 401, str(refusal), headers={"WWW-Authenticate": challenge}
            )
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user"] = user
        state["user_id"] = user.id
        await self.app(scope, receive, send)


# Declared so the OpenAPI document shows the bearer scheme; the middleware does the checking.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A JWT from the frontend's Better Auth session, signed with BETTER_AUTH_SECRET.",
)


def _authenticated_user(request: Request, _: Any = Depends(_bearer_scheme)) -> AuthenticatedUser:
    user = request.scope.get("state", {}).get("user")
    if not isinstance(user, AuthenticatedUser):
        # Only reachable for a route mounted outside the protected prefix: fail closed.
        raise HTTPException(
            401, "An Authorization: Bearer token is required", {"WWW-Authenticate": "Bearer"}
        )
    return user


CurrentUser = Annotated[AuthenticatedUser, Depends(_authenticated_user)]


def owner_of_path(
    user: CurrentUser,
    user_id: Annotated[str, Path(description="The signed-in person's id (the token's subject).")],
) -> AuthenticatedUser:
    if user_id != user.id:
        raise HTTPException(403, "The path's user id is not the signed-in user's")
    return user


TaskOwner = Annotated[AuthenticatedUser, Depends(owner_of_path)]
"""The caller, proven to be the person named by the path's `{user_id}`."""


class KnownUsers:
    """Which callers' `users` rows this process has already brought in step with their claims.

    A write checks here first, so the row is written when someone first writes or their email or
    name changes, not on every request. Entries expire, so a row removed behind our back is
    written again within `ttl_seconds`.
    """

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 300.0) -> None:
        self._max_entries = max_entries
        self._ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[AuthenticatedUser, float]] = OrderedDict()

    def is_current(self, user: AuthenticatedUser) -> bool:
        entry = self._entries.get(user.id)
        if entry is None:
            return False
        known, expires_at = entry
        if known != user or expires_at < time.monotonic():
            del self._entries[user.id]
            return False
        return True

    def remember(self, user: AuthenticatedUser) -> None:
        self._entries[user.id] = (user, time.monotonic() + self._ttl_seconds)
        self._entries.move_to_end(user.id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


async def _write_user_row(session: AsyncSession, user: AuthenticatedUser) -> None:
    dialect = session.bind.dialect.name if session.bind else "postgresql"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(User).values(
        id=user.id, email=user.email, name=user.name, created_at=utc_now()
    )
    # The WHERE makes an unchanged row a no-op rather than a write.
    statement = statement.on_conflict_do_update(
        index_elements=[User.id],
        set_={"email": statement.excluded.email, "name": statement.excluded.name},
        where=or_(
            User.email.is_distinct_from(statement.excluded.email),
            User.name.is_distinct_from(statement.excluded.name),
        ),
    )
    await session.exec(statement)


async def record_user(request: Request, session: AsyncSession, user: AuthenticatedUser) -> None:
    """Bring the caller's `users` row in step with their token, unless this process already has.

    Writing handlers call it once the request is known to be valid (a dependency would run
    before body validation, and spend a statement on a request that is then refused).
    """
    known_users: KnownUsers = request.app.state.known_users
    if known_users.is_current(user):
        return
    await _write_user_row(session, user)
    # Remembered only once committed: a rolled-back row must be written again next time.
    event.listen(
        session.sync_session, "after_commit", lambda _: known_users.remember(user), once=True
    )
