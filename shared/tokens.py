"""Bearer-token verification: Better Auth's published keys (JWKS), the shared secret, and Better
Auth session tokens (its bearer plugin), each as configured.

A token's shape says which kind it is: a JWT (three dot-separated parts) goes to the JWT
verifiers only, anything else to the session lookup only (when enabled). Among the JWT verifiers,
the token's header only says which of the configured ones to ask: an HS256 token is never checked
against a public key, an asymmetric one never against the secret, and `none` against nothing.

A JWT that verified is remembered (`VerifiedTokens`), so its next request costs a hash and a
lookup instead of a signature check and claims parsing, as PostgREST does.
"""

import asyncio
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeGuard

import httpx2
import jwt
import structlog
from cachetools import TLRUCache, TTLCache
from jwt.api_jwk import PyJWK

from shared.config import Settings
from shared.db import USER_ID_MAX_LENGTH, is_storable_text

MAX_TOKEN_BYTES = 8192

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """The verified caller: `id` is the token's subject; email and name are as the token says."""

    id: str
    email: str | None
    name: str | None


class TokenRejectedError(Exception):
    """The request carries no usable token; the message says why, without quoting the token."""


class VerificationUnavailableError(Exception):
    """A token cannot be checked right now (a 503): `detail` is for the caller, the message for
    the log; `retry_after` is how many seconds to suggest, if not the default."""

    detail = "Tokens cannot be checked right now; try again shortly."
    retry_after: int | None = None


class KeySetUnavailableError(VerificationUnavailableError):
    """The published keys could not be had, so a token that needs them cannot be checked."""

    detail = "The keys that sign tokens cannot be fetched right now; try again shortly."


class SessionLookupUnavailableError(VerificationUnavailableError):
    """The frontend's get-session did not answer usefully, so a session token cannot be checked."""

    detail = "The frontend's Better Auth cannot confirm sessions right now; try again shortly."


class SessionLookupsExhaustedError(VerificationUnavailableError):
    """More new session tokens arrived than may be looked up; no lookup was made."""

    detail = "Too many new sessions to check right now; try again shortly."

    def __init__(self, retry_after: int) -> None:
        super().__init__("session lookups are rate-limited")
        self.retry_after = retry_after


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


def _check_registered_claim_types(claims: Mapping[str, Any]) -> None:
    # RFC 7519 section 4.1: the times are JSON numbers, `iss` a string, `aud` a string or a list
    # of them. PyJWT checks only the claims it is told to verify, and reads a time from "123" or
    # `true`, so each present claim's type is checked here, whatever the configuration verifies.
    for name in ("exp", "nbf", "iat"):
        if name in claims and type(claims[name]) not in (int, float):
            raise TokenRejectedError(f"The token is invalid: the {name!r} claim must be a number")
    if "iss" in claims and not isinstance(claims["iss"], str):
        raise TokenRejectedError("The token is invalid: the 'iss' claim must be a string")
    audience = claims.get("aud")
    if "aud" in claims and not (
        isinstance(audience, str)
        or (isinstance(audience, list) and all(isinstance(item, str) for item in audience))
    ):
        raise TokenRejectedError(
            "The token is invalid: the 'aud' claim must be a string or a list of strings"
        )


def _is_user_id(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str) and 0 < len(value) <= USER_ID_MAX_LENGTH and is_storable_text(value)
    )


def _user_from_claims(claims: Mapping[str, Any]) -> AuthenticatedUser:
    subject = claims.get("sub")
    if not _is_user_id(subject):
        raise TokenRejectedError(
            f"The token is invalid: 'sub' must be a user id of 1 to {USER_ID_MAX_LENGTH} characters"
        )
    # Better Auth puts the user object in the payload: its email and name feed the users row.
    return AuthenticatedUser(
        id=subject,
        email=_optional_text_claim(claims, "email"),
        name=_optional_text_claim(claims, "name"),
    )


def cache_key(token: str) -> bytes:
    """What the token caches hold a token under: the SHA-256 of the whole token, so the token
    itself is never kept, and two tokens that differ anywhere (one character of the signature)
    never share an entry."""
    return hashlib.sha256(token.encode()).digest()


class _Remembered(Protocol):
    @property
    def keep_until(self) -> float: ...


def _keep_until(_key: bytes, remembered: _Remembered, _now: float) -> float:
    # The TLRU caches' time-to-use: each entry carries its own deadline, on its cache's clock.
    return remembered.keep_until


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A JWT's verdict as verification gave it, and for how long that verdict holds.

    Times are wall-clock seconds (`time.time()`), the clock `exp`, `nbf` and `iat` are read on.
    Verification accepts the token from `valid_from` (its `nbf` or `iat`, less the leeway)
    until just before `keep_until` (its `exp` plus the leeway)."""

    user: AuthenticatedUser
    valid_from: float
    keep_until: float
    # The published key that verified it (`_PublishedKey.fingerprint`); None for the secret.
    signed_by: bytes | None


def _verified(claims: Mapping[str, Any], leeway: int, signed_by: bytes | None) -> VerifiedToken:
    # Exactly PyJWT's rules, so that a remembered verdict is the one verification would give at
    # any moment: it reads each time as int() (1.9 is 1) and refuses when
    # `iat > now + leeway`, `nbf > now + leeway` or `exp <= now - leeway`.
    starts = [int(claims[name]) for name in ("nbf", "iat") if name in claims]
    return VerifiedToken(
        user=_user_from_claims(claims),
        valid_from=max(starts) - leeway if starts else -math.inf,
        keep_until=int(claims["exp"]) + leeway,  # `exp` is required, so always there
        signed_by=signed_by,
    )


class VerifiedTokens:
    """The JWTs that verified, per process: at most `entries` of them, least recently used
    dropped first, each dropped once its `exp` (plus the leeway) has passed.

    An entry holds the token's SHA-256 and the user (id, email, name: at most the token's
    MAX_TOKEN_BYTES of text), never the token. Only tokens that verified are put here, so a
    refused token is checked again on each request. Entries signed by a published key are
    dropped when a fetch of the key set no longer has that key (`forget_keys_other_than`).
    A lock makes each operation atomic for threads too; none of them awaits."""

    def __init__(self, entries: int, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: TLRUCache[bytes, VerifiedToken] = TLRUCache(
            maxsize=entries, ttu=_keep_until, timer=clock
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> VerifiedToken | None:
        with self._lock:
            verified = self._entries.get(key)  # None from `keep_until` on
        # Before its `nbf` or `iat` (a clock set back since), verification would refuse it.
        if verified is None or self._clock() < verified.valid_from:
            return None
        return verified

    def put(self, key: bytes, verified: VerifiedToken) -> None:
        with self._lock:
            self._entries[key] = verified

    def forget_keys_other_than(self, published: Set[bytes]) -> None:
        """Drop what a key no longer published verified: the key set was fetched again."""
        with self._lock:
            withdrawn = [
                key
                for key in list(self._entries)
                # .get: an entry may reach its `exp` between the listing and this look.
                if (verified := self._entries.get(key)) is not None
                and verified.signed_by is not None
                and verified.signed_by not in published
            ]
            for key in withdrawn:
                self._entries.pop(key, None)
        if withdrawn:
            log.info("jwt_cache.keys_withdrawn", dropped=len(withdrawn))


@dataclass(frozen=True)
class _ClaimRules:
    issuer: str | None
    audience: str | None
    leeway_seconds: int

    def decode(
        self, token: str, key: Any, algorithms: list[str], signed_by: bytes | None = None
    ) -> VerifiedToken:
        options = {
            "require": ["sub", "exp"],
            "verify_iss": self.issuer is not None,
            "verify_aud": self.audience is not None,
        }
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                options=options,  # type: ignore[arg-type]
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError("The token has expired") from None
        except jwt.InvalidTokenError as error:
            raise TokenRejectedError(f"The token is invalid: {_describe(error)}") from None
        _check_registered_claim_types(claims)
        return _verified(claims, self.leeway_seconds, signed_by)


class SharedSecretVerifier:
    """Tokens signed with BETTER_AUTH_SECRET (the original spec's flow), by `JWT_ALGORITHMS`."""

    def __init__(self, settings: Settings, secret: str) -> None:
        self.algorithms = list(settings.jwt_algorithms)
        self._key = secret.encode()
        self._rules = _ClaimRules(
            settings.jwt_issuer, settings.jwt_audience, settings.jwt_leeway_seconds
        )

    def verify(self, token: str) -> VerifiedToken:
        return self._rules.decode(token, self._key, self.algorithms)


# Which token algorithms a published key can check, by its type and curve.
_ALGORITHMS_FOR_KEY = {
    ("OKP", "Ed25519"): {"EdDSA"},
    ("EC", "P-256"): {"ES256"},
    ("EC", "P-384"): {"ES384"},
    ("EC", "P-521"): {"ES512"},
    ("RSA", None): {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
}


@dataclass(frozen=True)
class _PublishedKey:
    kid: str | None
    algorithms: frozenset[str]
    key: Any
    # The SHA-256 of the JWK as published: the same key in the next fetch has the same one.
    fingerprint: bytes


def _published_key(jwk: Mapping[str, Any]) -> _PublishedKey | None:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    algorithms = _ALGORITHMS_FOR_KEY.get((kty, crv if kty != "RSA" else None))
    if algorithms is None or jwk.get("use", "sig") != "sig":
        return None
    # Better Auth's Ed25519 keys carry no `alg`; where a key names one, only that one is allowed.
    if "alg" in jwk:
        if jwk["alg"] not in algorithms:
            return None
        algorithms = {jwk["alg"]}
    kid = jwk.get("kid")
    try:
        parsed = PyJWK(dict(jwk), algorithm=next(iter(sorted(algorithms))))
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    fingerprint = hashlib.sha256(json.dumps(jwk, sort_keys=True).encode()).digest()
    return _PublishedKey(
        kid if isinstance(kid, str) else None, frozenset(algorithms), parsed.key, fingerprint
    )


class RemoteKeySet:
    """Better Auth's JWKS document, fetched without blocking the event loop, cached, and
    refetched when it is stale or when a token names a key it lacks (at most once per
    `refetch_interval`). When the endpoint fails, the keys already held keep working. When a
    fetch no longer has a key, `on_withdrawn` is told the fingerprints still published."""

    def __init__(
        self,
        url: str,
        client: httpx2.AsyncClient,
        *,
        cache_seconds: float,
        refetch_interval: float,
        timeout: float,
        on_withdrawn: Callable[[Set[bytes]], None] | None = None,
    ) -> None:
        self.url = url
        self._client = client
        self._on_withdrawn = on_withdrawn
        self._cache_seconds = cache_seconds
        self._refetch_interval = refetch_interval
        self._timeout = timeout
        self._keys: list[_PublishedKey] | None = None
        self._last_fetch_failed = False
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    def refresh_due(self) -> bool:
        """Whether the next `key_for` would fetch the key set again (it is stale, and not
        tried within the refetch interval)."""
        now = time.monotonic()
        return (
            now - self._fetched_at > self._cache_seconds
            and now - self._attempted_at >= self._refetch_interval
        )

    async def key_for(self, kid: str | None, algorithm: str) -> _PublishedKey:
        if time.monotonic() - self._fetched_at > self._cache_seconds:
            await self._refresh()
        key = self._find(kid, algorithm)
        if key is None and self._keys is not None:
            # A key we do not know may be a rotation: look again, unless we just did.
            await self._refresh()
            key = self._find(kid, algorithm)
        if key is not None:
            return key
        if self._keys is None or self._last_fetch_failed:
            # Maybe a rotated key we cannot fetch: a retry later may succeed, unlike a 401.
            raise KeySetUnavailableError(f"the key set at {self.url} could not be fetched")
        raise TokenRejectedError("The token is invalid: it is not signed by a published key")

    def _find(self, kid: str | None, algorithm: str) -> _PublishedKey | None:
        candidates = [
            key
            for key in self._keys or []
            if algorithm in key.algorithms and (kid is None or key.kid == kid)
        ]
        # Without a kid the choice must be unambiguous; we never try keys one after another.
        return candidates[0] if len(candidates) == 1 else None

    async def _refresh(self) -> None:
        attempted_at = self._attempted_at
        async with self._lock:
            if self._attempted_at != attempted_at:
                return  # another request refreshed while this one waited
            if time.monotonic() - self._attempted_at < self._refetch_interval:
                return
            self._attempted_at = time.monotonic()
            try:
                response = await self._client.get(self.url, timeout=self._timeout)
                response.raise_for_status()
                document = response.json()
                keys = [_published_key(jwk) for jwk in document["keys"]]
            except (httpx2.HTTPError, ValueError, KeyError, TypeError, AttributeError) as error:
                log.warning("jwks.fetch_failed", url=self.url, error_type=type(error).__name__)
                self._last_fetch_failed = True
                return
            self._last_fetch_failed = False
            held = {key.fingerprint for key in self._keys or []}
            self._keys = [key for key in keys if key is not None]
            self._fetched_at = time.monotonic()
            log.info("jwks.fetched", url=self.url, keys=len(self._keys))
            published = {key.fingerprint for key in self._keys}
            if self._on_withdrawn is not None and held - published:
                self._on_withdrawn(published)


class PublicKeyVerifier:
    """Tokens signed by Better Auth's JWT plugin, checked against its published keys with the
    `JWKS_ALGORITHMS`, and with `iss` and `aud` (by default both the frontend's base URL)."""

    def __init__(self, settings: Settings, key_set: RemoteKeySet) -> None:
        self.algorithms = list(settings.jwks_algorithms)
        self.key_set = key_set
        self._rules = _ClaimRules(
            settings.jwks_issuer, settings.jwks_audience, settings.jwt_leeway_seconds
        )

    async def verify(self, token: str, header: Mapping[str, Any]) -> VerifiedToken:
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejectedError("The token is invalid: 'kid' must be a string")
        algorithm = header["alg"]
        published = await self.key_set.key_for(kid, algorithm)
        return self._rules.decode(token, published.key, [algorithm], published.fingerprint)


# Better Auth's bearer plugin hands out the session token (32 letters and digits), signed as its
# session cookie is: `<token>.<base64 HMAC-SHA256>`; it also takes the bare token. A JWT has two
# dots, a session token at most one, so the two kinds never meet each other's verifiers.
_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,255}(?:\.[A-Za-z0-9+/_-]{43}=?)?")
MAX_SESSION_TOKEN_CHARS = 300


def _is_jwt_shaped(token: str) -> bool:
    return token.count(".") == 2


@dataclass(frozen=True, slots=True)
class _CheckedSession:
    user: AuthenticatedUser
    keep_until: float  # time.monotonic(): the cache time, or the session's expiry if sooner


class _LookupBudget:
    """A token bucket: at most `burst` lookups at once, refilled at `per_second`. Two numbers
    per process; a rate-limiting library would bring a background thread and a log of every
    lookup for the same answer."""

    def __init__(self, per_second: float, burst: int) -> None:
        self._per_second = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated_at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated_at) * self._per_second)
        self._updated_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def seconds_until_next(self) -> int:
        return max(1, math.ceil((1 - self._tokens) / self._per_second))


_SIGNED_OUT = "The session is not valid: signed out, expired or not known to the frontend"


def _optional_user_text(user: Mapping[str, Any], name: str) -> str | None:
    value = user.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"the user's {name!r} is not a string")  # the frontend's fault: a 503
    if not is_storable_text(value):
        raise TokenRejectedError(f"The session's user has a {name!r} this service cannot store")
    return value


def _read_session(body: object) -> tuple[AuthenticatedUser, float]:
    """The user of get-session's answer and the seconds their session has left; ValueError when
    the answer is not get-session's, TokenRejectedError when it refuses the token."""
    if body is None:
        raise TokenRejectedError(_SIGNED_OUT)
    if not isinstance(body, dict):
        raise ValueError("the answer is neither null nor an object")
    session, user = body.get("session"), body.get("user")
    if not isinstance(session, dict) or not isinstance(user, dict):
        raise ValueError("the answer has no 'session' and 'user' objects")
    expires = session.get("expiresAt")
    if not isinstance(expires, str):
        raise ValueError("the session has no 'expiresAt' time")
    expires_at = datetime.fromisoformat(expires)  # ValueError when it is not one
    if expires_at.tzinfo is None:
        raise ValueError("the session's 'expiresAt' has no time zone")
    user_id = user.get("id")
    if session.get("userId", user_id) != user_id:
        raise ValueError("the session's 'userId' is not its user's 'id'")
    seconds_left = expires_at.timestamp() - time.time()
    if seconds_left <= 0:
        raise TokenRejectedError("The session has expired")
    if not _is_user_id(user_id):
        raise TokenRejectedError(
            f"The session's user id is not a user id of 1 to {USER_ID_MAX_LENGTH} characters"
        )
    email, name = _optional_user_text(user, "email"), _optional_user_text(user, "name")
    return AuthenticatedUser(id=user_id, email=email, name=name), seconds_left


class SessionTokenVerifier:
    """Better Auth session tokens, checked by asking the frontend's get-session (with the token
    as its bearer plugin takes it), and remembered for a short while.

    - a confirmed session is kept for `cache_seconds` (never past its expiry), so a sign-out is
      honoured within that time; a refused token is refused again for `refused_seconds`;
    - both caches hold at most `cache_entries` tokens, keyed by the token's SHA-256, so the raw
      token is held only while its lookup runs;
    - concurrent requests with one token share one lookup;
    - lookups (tokens found in neither cache) are rate-limited per process; beyond the budget a
      new token is answered 503 with `Retry-After`, not 401, since it may well be valid;
    - a frontend that does not answer within `timeout`, or answers with anything but get-session's
      200, makes a 503, and nothing is remembered.
    """

    def __init__(
        self,
        url: str,
        client: httpx2.AsyncClient,
        *,
        cache_seconds: float,
        refused_seconds: float,
        cache_entries: int,
        lookups_per_second: float,
        lookup_burst: int,
        timeout: float,
    ) -> None:
        self.url = url
        self._client = client
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._sessions: TLRUCache[bytes, _CheckedSession] = TLRUCache(
            maxsize=cache_entries, ttu=_keep_until, timer=time.monotonic
        )
        self._refused: TTLCache[bytes, str] | None = (
            TTLCache(maxsize=cache_entries, ttl=refused_seconds, timer=time.monotonic)
            if refused_seconds > 0
            else None
        )
        self._in_flight: dict[bytes, asyncio.Future[AuthenticatedUser]] = {}
        self._budget = _LookupBudget(lookups_per_second, lookup_burst)

    async def verify(self, token: str) -> AuthenticatedUser:
        if len(token) > MAX_SESSION_TOKEN_CHARS:
            raise TokenRejectedError(
                f"The token is invalid: longer than {MAX_SESSION_TOKEN_CHARS} characters, it is "
                "neither a JWT nor a Better Auth session token"
            )
        if not _SESSION_TOKEN.fullmatch(token):
            raise TokenRejectedError(
                "The token is invalid: it is neither a JWT nor a Better Auth session token"
            )
        key = cache_key(token)
        checked = self._sessions.get(key)
        if checked is not None:
            return checked.user
        if self._refused is not None and (refusal := self._refused.get(key)) is not None:
            raise TokenRejectedError(refusal)
        lookup = self._in_flight.get(key)
        if lookup is None:
            if not self._budget.take():
                raise SessionLookupsExhaustedError(self._budget.seconds_until_next())
            lookup = asyncio.ensure_future(self._check(key, token))
            self._in_flight[key] = lookup
            lookup.add_done_callback(partial(self._settled, key))
        # Shielded: one caller going away does not cancel the lookup the others wait for.
        return await asyncio.shield(lookup)

    def _settled(self, key: bytes, lookup: asyncio.Future[AuthenticatedUser]) -> None:
        del self._in_flight[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved even when every caller went away

    async def _check(self, key: bytes, token: str) -> AuthenticatedUser:
        body = await self._ask(token)
        try:
            user, seconds_left = _read_session(body)
        except TokenRejectedError as refusal:
            if self._refused is not None:
                self._refused[key] = str(refusal)
            raise
        except ValueError as error:
            log.warning("session.lookup_unreadable", url=self.url, reason=str(error))
            raise SessionLookupUnavailableError(
                f"{self.url} answered what get-session does not: {error}"
            ) from None
        keep_for = min(self._cache_seconds, seconds_left)
        if keep_for > 0:
            self._sessions[key] = _CheckedSession(user, time.monotonic() + keep_for)
        return user

    async def _ask(self, token: str) -> object:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(
                    self.url,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=self._timeout,
                )
        except (httpx2.HTTPError, TimeoutError) as error:
            log.warning("session.lookup_failed", url=self.url, error_type=type(error).__name__)
            raise SessionLookupUnavailableError(f"{self.url} did not answer") from None
        if response.status_code != 200:
            log.warning("session.lookup_failed", url=self.url, status=response.status_code)
            raise SessionLookupUnavailableError(f"{self.url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            log.warning("session.lookup_unreadable", url=self.url, reason="not JSON")
            raise SessionLookupUnavailableError(f"{self.url} answered with no JSON") from None


class TokenVerifier:
    """Hands each token to the configured verifier for its kind and algorithm, or refuses it;
    a JWT that verified is answered from `verified_tokens` until its verdict could change."""

    def __init__(
        self,
        shared_secret: SharedSecretVerifier | None,
        public_keys: PublicKeyVerifier | None,
        session_tokens: SessionTokenVerifier | None = None,
        verified_tokens: VerifiedTokens | None = None,
    ) -> None:
        self.shared_secret = shared_secret
        self.public_keys = public_keys
        self.session_tokens = session_tokens
        self.verified_tokens = verified_tokens

    async def verify(self, token: str) -> AuthenticatedUser:
        if not _is_jwt_shaped(token):
            if self.session_tokens is not None:
                return await self.session_tokens.verify(token)
            raise TokenRejectedError(
                "The token is invalid: it is not a well-formed JWT (and this service is not "
                "configured for Better Auth session tokens)"
            )
        cache = self.verified_tokens
        if cache is None:
            return (await self._verify_jwt(token)).user
        key = cache_key(token)
        remembered = cache.get(key)
        # A stale key set is fetched on the next full check, which may withdraw the key: a
        # remembered token signed by a published key goes through it, as uncached ones would.
        if remembered is not None and not (
            remembered.signed_by is not None
            and self.public_keys is not None
            and self.public_keys.key_set.refresh_due()
        ):
            return remembered.user
        verified = await self._verify_jwt(token)
        # No await since the key was found: a fetch that withdraws it cannot come in between.
        cache.put(key, verified)
        return verified.user

    async def _verify_jwt(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejectedError("The token is invalid: it is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if self.shared_secret is not None and algorithm in self.shared_secret.algorithms:
            return self.shared_secret.verify(token)
        if self.public_keys is not None and algorithm in self.public_keys.algorithms:
            return await self.public_keys.verify(token, header)
        raise TokenRejectedError("The token is invalid: the signing algorithm is not accepted")


def create_token_verifier(settings: Settings, client: httpx2.AsyncClient) -> TokenVerifier:
    secret = settings.jwt_secret
    jwks_url = settings.jwks_url
    entries = settings.jwt_cache_entries
    verified_tokens = VerifiedTokens(entries) if entries > 0 else None
    public_keys = None
    if jwks_url is not None:
        key_set = RemoteKeySet(
            jwks_url,
            client,
            cache_seconds=settings.jwks_cache_seconds,
            refetch_interval=settings.jwks_refetch_interval_seconds,
            timeout=settings.jwks_timeout_seconds,
            on_withdrawn=(
                verified_tokens.forget_keys_other_than if verified_tokens is not None else None
            ),
        )
        public_keys = PublicKeyVerifier(settings, key_set)
    session_url = settings.session_lookup_url
    session_tokens = None
    if session_url is not None:
        session_tokens = SessionTokenVerifier(
            session_url,
            client,
            cache_seconds=settings.better_auth_session_cache_seconds,
            refused_seconds=settings.better_auth_session_refused_seconds,
            cache_entries=settings.better_auth_session_cache_entries,
            lookups_per_second=settings.better_auth_session_lookups_per_second,
            lookup_burst=settings.better_auth_session_lookup_burst,
            timeout=settings.better_auth_session_timeout_seconds,
        )
    return TokenVerifier(
        SharedSecretVerifier(settings, secret.get_secret_value()) if secret else None,
        public_keys,
        session_tokens,
        verified_tokens,
    )


def mint_token(
    settings: Settings,
    user_id: str,
    *,
    email: str | None = None,
    name: str | None = None,
    lifetime: timedelta = timedelta(hours=1),
    **extra_claims: Any,
) -> str:
    """A shared-secret token this service accepts, signed as the spec's frontend signs it."""
    secret = settings.jwt_secret
    if secret is None:
        raise ValueError(
            "minting needs BETTER_AUTH_SECRET; with only BETTER_AUTH_URL, tokens come from "
            "Better Auth's /api/auth/token"
        )
    now = int(time.time())
    expires = now + int(lifetime.total_seconds())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": expires}
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    if settings.jwt_issuer is not None:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience is not None:
        claims["aud"] = settings.jwt_audience
    claims.update(extra_claims)
    return jwt.encode(claims, secret.get_secret_value(), algorithm=settings.jwt_algorithms[0])
