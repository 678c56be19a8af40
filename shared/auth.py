"""Bearer-token authentication: who is calling, whether the path is theirs, and their `users` row.

Tokens are checked by the edge (shared/edge.py) for every path under `/api/`, before a body is read
or a database connection taken, so a bad token costs nothing and learns nothing. Handlers then
take the verified person through the `TaskOwner` dependency, and writing handlers call
`record_user` to keep the person's `users` row in step.
"""

import re
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from sqlalchemy import bindparam, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from shared.db import DatabaseSession, Statement, User, app_state, utc_now
from shared.tokens import (
    MAX_TOKEN_BYTES,
    AuthenticatedUser,
    TokenRejectedError,
)

PROTECTED_PREFIX = "/api/"
# RFC 6750's b64token; a JWT is three base64url segments joined by dots.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


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


# The bearer scheme as the OpenAPI document shows it; the edge (shared/edge.py) does the
# checking.
_BEARER_SCHEME = HTTPBearerModel(
    description=(
        "A token from the frontend's Better Auth, in one of three ways, as configured: a JWT "
        "from its JWT plugin (`/api/auth/token`, verified against the published keys at "
        "BETTER_AUTH_URL); a JWT signed with the shared BETTER_AUTH_SECRET (HS256); or, with "
        "BETTER_AUTH_SESSION_TOKENS=true, the session token of its bearer plugin (the "
        "`set-auth-token` response header at sign-in), confirmed with the frontend's "
        "`/api/auth/get-session` and remembered for BETTER_AUTH_SESSION_CACHE_SECONDS, so a "
        "sign-out takes effect within that time. A token with two dots is taken for a JWT, "
        "any other for a session token. A token that cannot be checked right now (the key set "
        "or get-session unreachable, or too many new sessions at once) is a 503 with "
        "Retry-After."
    )
)


def _verified_user(request: Request) -> AuthenticatedUser:
    user = request.scope.get("state", {}).get("user")
    if not isinstance(user, AuthenticatedUser):
        # Only reachable for a route mounted outside the protected prefix: fail closed.
        raise HTTPException(
            401, "An Authorization: Bearer token is required", {"WWW-Authenticate": "Bearer"}
        )
    return user


# Each dependency below is the security scheme itself (a `SecurityBase`, as FastAPI's
# `HTTPBearer` is), so the document shows the bearer scheme on every route that uses it while a
# request solves one dependency, not three (the user, an `HTTPBearer` that parsed the header
# again for nothing, and the owner check). Their `__call__` are coroutines although they never
# wait: FastAPI runs a plain function in a worker thread, two thread hand-offs per request.
class _SignedInUser(SecurityBase):
    """The person whose token the edge verified."""

    def __init__(self) -> None:
        self.model = _BEARER_SCHEME
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> AuthenticatedUser:
        return _verified_user(request)


PathUserId = Annotated[str, Path(description="The signed-in person's id (the token's subject).")]


class _OwnerOfPath(SecurityBase):
    """The person whose token the edge verified, when the path's `{user_id}` is theirs."""

    def __init__(self) -> None:
        self.model = _BEARER_SCHEME
        self.scheme_name = "HTTPBearer"

    async def __call__(
        self,
        request: Request,
        user_id: PathUserId,
    ) -> AuthenticatedUser:
        user = _verified_user(request)
        if user_id != user.id:
            raise HTTPException(403, "The path's user id is not the signed-in user's")
        return user


current_user = _SignedInUser()
CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
"""The caller, whose token the edge verified."""

owner_of_path = _OwnerOfPath()
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


_NEW_USER = Statement(
    insert(User)
    .values(
        id=bindparam("user_id"),
        email=bindparam("new_email"),
        name=bindparam("new_name"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing(index_elements=[User.id])
)
# Two statements, not one upsert: ON CONFLICT DO UPDATE locks the existing row even when it
# changes nothing, which would queue all of one person's writes behind each other. DO NOTHING and
# an UPDATE whose WHERE does not match lock nothing.
_CHANGED_USER = Statement(
    update(User)
    .where(
        col(User.id) == bindparam("user_id"),
        or_(
            col(User.email).is_distinct_from(bindparam("new_email")),
            col(User.name).is_distinct_from(bindparam("new_name")),
        ),
    )
    .values(email=bindparam("new_email"), name=bindparam("new_name"))
)


async def record_user(request: Request, session: DatabaseSession, user: AuthenticatedUser) -> None:
    """Bring the caller's `users` row in step with their token, unless this process already has.

    Writing handlers call it once the request is known to be valid (a dependency would run
    before body validation, and spend a statement on a request that is then refused), and before
    their statement on `tasks`, whose foreign key needs the row. When it writes, the rest of the
    request is one transaction with the row; otherwise the handler's one statement commits by
    itself. In a transaction every write locks in one order, the `users` row first, then the
    task, then (in the count trigger) the person's counter slot: a change that wrote the users
    row after its statement would hold a slot while waiting for the users row, and a creation
    on a backend sharing that slot (`pg_backend_pid() % 64`) the other way round.
    """
    known_users = app_state(request.app).known_users
    if known_users.is_current(user):
        return
    # The row and the change it is written for stand or fall together: a write refused (a
    # task not found) leaves no trace, not even the person.
    await session.begin()
    values = {"user_id": user.id, "new_email": user.email, "new_name": user.name}
    await session.execute(_NEW_USER, **values, created_at=utc_now())
    await session.execute(_CHANGED_USER, **values)
    # Remembered only once committed: a rolled-back row must be written again next time.
    session.after_commit(lambda: known_users.remember(user))
