"""The token verifier with keys made in the test and a real key-set endpoint on loopback."""

import asyncio
import base64
import gc
import hashlib
import hmac
import json
import math
import threading
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.config import Settings
from shared.tokens import (
    MAX_TOKEN_BYTES,
    AuthenticatedUser,
    KeySetUnavailableError,
    SharedSecretVerifier,
    TokenRejectedError,
    TokenVerifier,
    VerifiedToken,
    VerifiedTokens,
    cache_key,
    create_token_verifier,
)
from tests.conftest import settings_for_test
from tests.keys import claims_for, jwks_endpoint, new_key
from tests.support import count_shared_secret_checks

SECRET = "a-shared-secret-of-at-least-thirty-two-bytes!"


@pytest.fixture
def endpoint():
    with jwks_endpoint() as endpoint:
        yield endpoint


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _settings(endpoint, **values) -> Settings:
    return settings_for_test(
        better_auth_url=endpoint.base_url,
        jwks_timeout_seconds=0.5,
        **values,
    )


def _with_verifier(settings: Settings, steps: Callable[[TokenVerifier], Awaitable]):
    """Run `steps` against one verifier (one cache), as one process would."""

    async def run():
        async with httpx2.AsyncClient() as client:
            return await steps(create_token_verifier(settings, client))

    return asyncio.run(run())


def _verify(settings: Settings, token: str) -> AuthenticatedUser:
    return _with_verifier(settings, lambda verifier: verifier.verify(token))


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "ES384", "ES512", "RS256", "PS256"])
def test_each_algorithm_is_accepted_when_configured(endpoint, algorithm):
    key = new_key(algorithm)
    endpoint.publish(key)
    settings = _settings(endpoint, jwks_algorithms=[algorithm])

    user = _verify(settings, key.sign(claims_for(endpoint.base_url)))

    assert user == AuthenticatedUser("alice", "alice@example.com", "Alice")


@pytest.mark.parametrize(
    ("algorithm", "configured"),
    [
        ("ES256", ["EdDSA"]),
        ("RS256", ["EdDSA", "ES256"]),
        ("EdDSA", ["RS256"]),
        ("PS256", ["RS256"]),
    ],
)
def test_an_algorithm_is_refused_when_not_configured(endpoint, algorithm, configured):
    key = new_key(algorithm)
    endpoint.publish(key)
    settings = _settings(endpoint, jwks_algorithms=configured)

    with pytest.raises(TokenRejectedError, match="algorithm"):
        _verify(settings, key.sign(claims_for(endpoint.base_url)))
    assert endpoint.hits == 0


def test_better_auths_ed25519_keys_without_alg_are_accepted(endpoint):
    key = new_key("EdDSA", publish_alg=False)
    endpoint.publish(key)

    assert _verify(_settings(endpoint), key.sign(claims_for(endpoint.base_url))).id == "alice"


def test_a_key_is_only_used_for_the_algorithm_it_names(endpoint):
    key = new_key("RS256")
    endpoint.publish(key)  # published with alg RS256
    token = jwt.encode(
        claims_for(endpoint.base_url), key.private_key, algorithm="PS256", headers={"kid": key.kid}
    )

    with pytest.raises(TokenRejectedError):
        _verify(_settings(endpoint, jwks_algorithms=["RS256", "PS256"]), token)


def test_an_hs256_token_signed_with_the_public_key_is_refused(endpoint):
    key = new_key("RS256")
    endpoint.publish(key)
    public_pem = key.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT itself refuses to sign this, so the forgery is made by hand, as an attacker would.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(claims_for(endpoint.base_url)).encode())
    signing_input = f"{header}.{payload}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{_b64(signature)}"

    with pytest.raises(TokenRejectedError, match="algorithm"):
        _verify(_settings(endpoint, jwks_algorithms=["RS256"]), forged)
    # With a shared secret configured too, the forgery meets the secret, not the key, and fails.
    with pytest.raises(TokenRejectedError, match="signature"):
        _verify(_settings(endpoint, jwks_algorithms=["RS256"], better_auth_secret=SECRET), forged)


def test_both_verifiers_may_be_on_at_once(endpoint):
    key = new_key("EdDSA")
    endpoint.publish(key)
    settings = _settings(endpoint, better_auth_secret=SECRET)
    shared_secret_token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, SECRET)

    assert _verify(settings, key.sign(claims_for(endpoint.base_url))).id == "alice"
    assert _verify(settings, shared_secret_token).id == "bob"


def test_without_a_secret_shared_secret_tokens_are_refused(endpoint):
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, SECRET)

    with pytest.raises(TokenRejectedError, match="algorithm"):
        _verify(_settings(endpoint), token)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"iss": "https://evil.example"}, id="wrong issuer"),
        pytest.param({"aud": "https://another-app.example"}, id="wrong audience"),
        pytest.param({"exp": int(time.time()) - 120}, id="expired"),
        pytest.param({"sub": 7}, id="sub a number"),
    ],
)
def test_claims_are_checked_as_better_auth_sets_them(endpoint, overrides):
    key = new_key("EdDSA")
    endpoint.publish(key)

    with pytest.raises(TokenRejectedError):
        _verify(_settings(endpoint), key.sign(claims_for(endpoint.base_url, **overrides)))


def test_issuer_and_audience_can_be_overridden(endpoint):
    key = new_key("EdDSA")
    endpoint.publish(key)
    settings = _settings(endpoint, jwt_issuer="https://auth.example", jwt_audience="tasks")
    token = key.sign(claims_for(endpoint.base_url, iss="https://auth.example", aud="tasks"))

    assert _verify(settings, token).id == "alice"
    with pytest.raises(TokenRejectedError):
        _verify(settings, key.sign(claims_for(endpoint.base_url)))


def test_a_rotated_key_is_picked_up_at_once(endpoint):
    old, new = new_key("EdDSA"), new_key("EdDSA")
    endpoint.publish(old)
    settings = _settings(endpoint, jwks_refetch_interval_seconds=0)

    async def steps(verifier):
        first = await verifier.verify(old.sign(claims_for(endpoint.base_url)))
        endpoint.publish(old, new)
        second = await verifier.verify(new.sign(claims_for(endpoint.base_url, "bob")))
        return first.id, second.id

    assert _with_verifier(settings, steps) == ("alice", "bob")
    assert endpoint.hits == 2


def test_the_key_set_is_cached(endpoint):
    key = new_key("EdDSA")
    endpoint.publish(key)

    async def steps(verifier):
        for _ in range(20):
            await verifier.verify(key.sign(claims_for(endpoint.base_url)))

    _with_verifier(_settings(endpoint), steps)
    assert endpoint.hits == 1


def test_garbage_kids_cannot_hammer_the_key_set(endpoint):
    key, stranger = new_key("EdDSA"), new_key("EdDSA")
    endpoint.publish(key)

    async def steps(verifier):
        await verifier.verify(key.sign(claims_for(endpoint.base_url)))
        refused = 0
        for _ in range(50):
            stranger.kid = uuid.uuid4().hex
            try:
                await verifier.verify(stranger.sign(claims_for(endpoint.base_url)))
            except TokenRejectedError:
                refused += 1
        return refused

    assert _with_verifier(_settings(endpoint), steps) == 50
    # One fetch for the first token, and at most one more within the refetch interval.
    assert endpoint.hits <= 2


def test_a_token_with_an_unknown_kid_is_refused(endpoint):
    endpoint.publish(new_key("EdDSA"))
    stranger = new_key("EdDSA")

    with pytest.raises(TokenRejectedError, match="published key"):
        _verify(_settings(endpoint), stranger.sign(claims_for(endpoint.base_url)))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(500, None, id="server error"),
        pytest.param(200, b"<html>not json</html>", id="not JSON"),
        pytest.param(200, b'{"no": "keys"}', id="no keys member"),
        pytest.param(200, b'{"keys": "nope"}', id="keys not a list"),
        pytest.param(404, b"{}", id="not found"),
    ],
)
def test_an_unusable_key_set_makes_verification_unavailable(endpoint, status, body):
    key = new_key("EdDSA")
    endpoint.publish(key)
    endpoint.status, endpoint.body = status, body

    with pytest.raises(KeySetUnavailableError):
        _verify(_settings(endpoint), key.sign(claims_for(endpoint.base_url)))


def test_an_unreachable_key_set_makes_verification_unavailable():
    settings = settings_for_test(better_auth_url="http://127.0.0.1:1", jwks_timeout_seconds=0.5)
    token = new_key("EdDSA").sign(claims_for("http://127.0.0.1:1"))

    with pytest.raises(KeySetUnavailableError):
        _verify(settings, token)


def test_a_hanging_key_set_gives_up_after_the_timeout(endpoint):
    key = new_key("EdDSA")
    endpoint.publish(key)
    endpoint.delay_seconds = 5

    started = time.monotonic()
    with pytest.raises(KeySetUnavailableError):
        _verify(_settings(endpoint), key.sign(claims_for(endpoint.base_url)))
    # Bounded by the 0.5 s timeout, not by the endpoint's 5 s: a hang would take all of it.
    assert time.monotonic() - started < 4


def test_cached_keys_keep_working_through_an_outage(endpoint):
    key = new_key("EdDSA")
    endpoint.publish(key)
    settings = _settings(endpoint, jwks_cache_seconds=0.01, jwks_refetch_interval_seconds=0)

    async def steps(verifier):
        await verifier.verify(key.sign(claims_for(endpoint.base_url)))
        endpoint.status = 503
        await asyncio.sleep(0.05)  # the cache is now stale and the endpoint failing
        return await verifier.verify(key.sign(claims_for(endpoint.base_url, "bob")))

    assert _with_verifier(settings, steps).id == "bob"
    assert endpoint.hits >= 2


def test_an_unknown_kid_during_an_outage_is_unavailable_not_refused(endpoint):
    key, rotated = new_key("EdDSA"), new_key("EdDSA")
    endpoint.publish(key)
    settings = _settings(endpoint, jwks_refetch_interval_seconds=0)

    async def steps(verifier):
        await verifier.verify(key.sign(claims_for(endpoint.base_url)))
        endpoint.status = 500
        await verifier.verify(rotated.sign(claims_for(endpoint.base_url)))

    with pytest.raises(KeySetUnavailableError):
        _with_verifier(settings, steps)


def test_a_key_set_that_returns_is_used_again(endpoint):
    key = new_key("EdDSA")
    endpoint.publish(key)
    endpoint.status = 500
    settings = _settings(endpoint, jwks_refetch_interval_seconds=0)

    async def steps(verifier):
        with pytest.raises(KeySetUnavailableError):
            await verifier.verify(key.sign(claims_for(endpoint.base_url)))
        endpoint.status = 200
        return await verifier.verify(key.sign(claims_for(endpoint.base_url)))

    assert _with_verifier(settings, steps).id == "alice"


def test_production_needs_a_way_to_verify_tokens():
    with pytest.raises(ValueError, match="BETTER_AUTH_URL"):
        settings_for_test(app_env="production", database_url="postgresql://db/x")
    assert (
        settings_for_test(
            app_env="production",
            database_url="postgresql://db/x",
            better_auth_url="https://app.example.com",
        ).jwks_url
        == "https://app.example.com/api/auth/jwks"
    )


# The verified-token cache.


def _secret_settings(**values) -> Settings:
    return settings_for_test(better_auth_secret=SECRET, **values)


def _secret_token(user_id: str = "alice", **claims) -> str:
    return jwt.encode({"sub": user_id, "exp": int(time.time()) + 600, **claims}, SECRET)


def _one_character_changed(token: str, index: int) -> str:
    # A character whose every bit counts (the last one of a segment may carry padding only).
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def test_a_verified_token_is_not_verified_again(monkeypatch):
    checked = count_shared_secret_checks(monkeypatch)
    token = _secret_token(email="alice@example.com")

    async def steps(verifier):
        return [await verifier.verify(token) for _ in range(5)]

    users = _with_verifier(_secret_settings(), steps)
    assert users == [AuthenticatedUser("alice", "alice@example.com", None)] * 5
    assert len(checked) == 1


def test_without_the_cache_every_request_verifies(monkeypatch):
    checked = count_shared_secret_checks(monkeypatch)
    token = _secret_token()

    async def steps(verifier):
        assert verifier.verified_tokens is None
        for _ in range(3):
            await verifier.verify(token)

    _with_verifier(_secret_settings(jwt_cache_entries=0), steps)
    assert len(checked) == 3


def test_a_token_that_expires_while_cached_is_refused():
    leeway = 1
    expires = int(time.time()) + 1
    token = _secret_token(exp=expires)

    async def steps(verifier):
        first = await verifier.verify(token)
        _sleep_until(expires + 0.2)  # past `exp`, within the leeway: still good, from the cache
        within_leeway = await verifier.verify(token)
        _sleep_until(expires + leeway + 0.05)
        with pytest.raises(TokenRejectedError, match="expired"):
            await verifier.verify(token)
        return first.id, within_leeway.id, len(verifier.verified_tokens)

    assert _with_verifier(_secret_settings(jwt_leeway_seconds=leeway), steps) == (
        "alice",
        "alice",
        0,
    )


def test_a_token_not_yet_valid_is_refused_until_its_nbf_and_then_accepted():
    starts = int(time.time()) + 1
    token = _secret_token(nbf=starts)

    async def steps(verifier):
        for _ in range(2):  # a refusal is not remembered either way
            with pytest.raises(TokenRejectedError, match="not yet valid"):
                await verifier.verify(token)
        assert len(verifier.verified_tokens) == 0
        _sleep_until(starts + 0.05)
        return (await verifier.verify(token)).id

    assert _with_verifier(_secret_settings(jwt_leeway_seconds=0), steps) == "alice"


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_cached_verdict_holds_only_between_its_nbf_and_its_exp():
    clock = _Clock(150.0)
    cache = VerifiedTokens(10, clock=clock)
    user = AuthenticatedUser("alice", None, None)
    cache.put(b"key", VerifiedToken(user, valid_from=100.0, keep_until=200.0, signed_by=None))

    seen = []
    for now in (99.999, 100.0, 150.0, 199.999, 200.0):
        clock.now = now
        found = cache.get(b"key")
        seen.append(found.user.id if found else None)

    # A clock set back before `nbf` refuses, as verification would; from `exp` on it is gone.
    assert seen == [None, "alice", "alice", "alice", None]


@pytest.mark.parametrize("leeway", [0, 30])
def test_the_cached_window_is_the_one_verification_applies(monkeypatch, leeway):
    # Times with fractions, as RFC 7519 allows: PyJWT reads each as a whole second.
    token = _secret_token(iat=1_000_000.9, nbf=1_000_010.5, exp=1_000_100.7)
    instants = [
        boundary + offset
        for boundary in (1_000_010 - leeway, 1_000_100 + leeway)
        for offset in (-0.001, 0, 0.001)
    ]

    class Clock(datetime):
        now_seconds = 0.0

        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(cls.now_seconds, tz=UTC)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Clock)
    verifier = SharedSecretVerifier(_secret_settings(jwt_leeway_seconds=leeway), SECRET)
    Clock.now_seconds = 1_000_050
    window = verifier.verify(token)
    for instant in instants:
        Clock.now_seconds = instant
        try:
            verifier.verify(token)
            accepted = True
        except TokenRejectedError:
            accepted = False
        assert accepted == (window.valid_from <= instant < window.keep_until), instant


def test_a_tampered_token_is_never_served_from_the_cache():
    token = _secret_token()
    signature_at = token.rindex(".") + 1
    payload_at = token.index(".") + 1

    async def steps(verifier):
        await verifier.verify(token)
        for tampered in (
            _one_character_changed(token, signature_at),
            _one_character_changed(token, payload_at),
        ):
            for _ in range(2):
                with pytest.raises(TokenRejectedError):
                    await verifier.verify(tampered)
        return (await verifier.verify(token)).id, len(verifier.verified_tokens)

    assert _with_verifier(_secret_settings(), steps) == ("alice", 1)


def test_the_cache_key_is_the_whole_token():
    token = _secret_token()
    assert cache_key(token) == hashlib.sha256(token.encode()).digest()
    assert cache_key(token) != cache_key(_one_character_changed(token, len(token) - 2))


def test_a_refused_token_is_verified_again_each_time(monkeypatch):
    checked = count_shared_secret_checks(monkeypatch)
    forged = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, "another-secret" * 3)

    async def steps(verifier):
        for _ in range(3):
            with pytest.raises(TokenRejectedError, match="signature"):
                await verifier.verify(forged)
        return len(verifier.verified_tokens)

    assert _with_verifier(_secret_settings(), steps) == 0
    assert len(checked) == 3


def test_a_token_whose_key_left_the_key_set_is_refused_after_the_refetch(endpoint):
    old, new = new_key("EdDSA"), new_key("EdDSA")
    endpoint.publish(old)
    settings = _settings(endpoint, jwks_refetch_interval_seconds=0)
    signed_by_old = old.sign(claims_for(endpoint.base_url))

    async def steps(verifier):
        await verifier.verify(signed_by_old)
        await verifier.verify(signed_by_old)  # from the cache
        # The frontend rotates and withdraws the old key; a token of the new one refetches.
        endpoint.publish(new)
        await verifier.verify(new.sign(claims_for(endpoint.base_url, "bob")))
        with pytest.raises(TokenRejectedError, match="published key"):
            await verifier.verify(signed_by_old)

    _with_verifier(settings, steps)
    assert endpoint.hits >= 2


def test_a_key_still_published_keeps_its_tokens_cached_across_a_refetch(endpoint):
    kept, added = new_key("EdDSA"), new_key("EdDSA")
    endpoint.publish(kept)
    settings = _settings(endpoint, jwks_refetch_interval_seconds=0)
    token = kept.sign(claims_for(endpoint.base_url))

    async def steps(verifier):
        await verifier.verify(token)
        endpoint.publish(kept, added)
        await verifier.verify(added.sign(claims_for(endpoint.base_url, "bob")))
        return len(verifier.verified_tokens)

    assert _with_verifier(settings, steps) == 2


def test_a_cached_token_meets_the_scheduled_refetch_that_withdraws_its_key(endpoint):
    old, new = new_key("EdDSA"), new_key("EdDSA")
    endpoint.publish(old)
    settings = _settings(endpoint, jwks_cache_seconds=0.05, jwks_refetch_interval_seconds=0)
    token = old.sign(claims_for(endpoint.base_url))

    async def steps(verifier):
        await verifier.verify(token)
        endpoint.publish(new)
        await asyncio.sleep(0.1)  # the key set is now stale: the next request fetches it
        with pytest.raises(TokenRejectedError, match="published key"):
            await verifier.verify(token)

    _with_verifier(settings, steps)


def test_the_cache_holds_at_most_its_entries():
    async def steps(verifier):
        tokens = [_secret_token(f"user-{number}") for number in range(10)]
        for token in tokens:
            await verifier.verify(token)
        held = len(verifier.verified_tokens)
        # The most recent stay; the oldest were dropped, and are simply verified again.
        latest = verifier.verified_tokens.get(cache_key(tokens[-1]))
        oldest = verifier.verified_tokens.get(cache_key(tokens[0]))
        return held, latest is not None, oldest is None, (await verifier.verify(tokens[0])).id

    assert _with_verifier(_secret_settings(jwt_cache_entries=3), steps) == (3, True, True, "user-0")


def test_the_cache_memory_is_bounded_by_its_entries_and_the_token_size():
    entries = 50
    per_entry = MAX_TOKEN_BYTES + 1024  # the user's text, at most the token, and bookkeeping
    # The largest claims a token of MAX_TOKEN_BYTES can carry, in the kept fields.
    # (base64 makes 4 characters of 3 bytes: about 6,000 bytes of claims).
    name = "n" * 2950
    email = "e" * 2950 + "@example.com"

    def largest_token(number: int) -> str:
        token = _secret_token(f"user-{number}", email=email, name=name)
        assert len(token) <= MAX_TOKEN_BYTES
        return token

    async def steps(verifier):
        tracemalloc.start()
        try:
            for number in range(entries * 3):
                # Made inside the call, so that no token outlives it to be counted as held.
                await verifier.verify(largest_token(number))
            held_entries = len(verifier.verified_tokens)
            gc.collect()
            full = tracemalloc.get_traced_memory()[0]
            # What the cache held is what dropping it gives back (the rest of the process,
            # threads of other tests included, is in both figures).
            verifier.verified_tokens = None
            gc.collect()
            held_bytes = full - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return held_entries, held_bytes

    held_entries, held_bytes = _with_verifier(_secret_settings(jwt_cache_entries=entries), steps)
    assert held_entries == entries
    assert held_bytes <= entries * per_entry


def test_concurrent_threads_share_one_cache_safely():
    cache = VerifiedTokens(64)
    user = AuthenticatedUser("alice", None, None)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for number in range(2000):
                key = cache_key(f"token-{(offset + number) % 200}")
                cache.put(key, VerifiedToken(user, -math.inf, time.time() + 60, None))
                cache.get(key)
                if number % 500 == 0:
                    cache.forget_keys_other_than(set())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(offset * 37,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(cache) <= 64


def test_concurrent_requests_with_one_token_agree():
    token = _secret_token()

    async def steps(verifier):
        users = await asyncio.gather(*(verifier.verify(token) for _ in range(50)))
        return {user.id for user in users}, len(verifier.verified_tokens)

    assert _with_verifier(_secret_settings(), steps) == ({"alice"}, 1)
