"""The token verifier with keys made in the test and a real key-set endpoint on loopback."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.config import Settings
from shared.tokens import (
    AuthenticatedUser,
    KeySetUnavailableError,
    TokenRejectedError,
    TokenVerifier,
    create_token_verifier,
)
from tests.keys import claims_for, jwks_endpoint, new_key

SECRET = "a-shared-secret-of-at-least-thirty-two-bytes!"


@pytest.fixture
def endpoint():
    with jwks_endpoint() as endpoint:
        yield endpoint


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _settings(endpoint, **values) -> Settings:
    return Settings(
        _env_file=None,
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
    settings = Settings(
        _env_file=None, better_auth_url="http://127.0.0.1:1", jwks_timeout_seconds=0.5
    )
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
        Settings(_env_file=None, app_env="production", database_url="postgresql://db/x")
    assert (
        Settings(
            _env_file=None,
            app_env="production",
            database_url="postgresql://db/x",
            better_auth_url="https://app.example.com",
        ).jwks_url
        == "https://app.example.com/api/auth/jwks"
    )
