"""RFC 8725 and PostgREST-style attacks on the bearer token, through HTTP.

Every refused token is a 401 problem with a Bearer challenge, stores nothing, and costs no
database connection: the pool's checkouts and new connections are counted around the request.
Each token is made at test time, from a clock read then, by a builder that receives the
configuration's issuer.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.auth import MAX_TOKEN_BYTES
from shared.db import app_state
from tests.conftest import TEST_SECRET
from tests.keys import SigningKey, claims_for, jwks_endpoint, new_key
from tests.security.conftest import pool_use, running_client
from tests.support import assert_problem, count_shared_secret_checks, task_count, user_count

LIST = "/api/alice/tasks"
# The `strict` configuration's shared-secret issuer and audience.
ISSUER = "https://auth.example"
AUDIENCE = "tasks-api"

# Better Auth's default (Ed25519, published without `alg`) and an RSA key, both published.
BETTER_AUTH_KEY = new_key("EdDSA", publish_alg=False)
RSA_KEY = new_key("RS256")
# Keys no configuration trusts.
ATTACKER_KEY = new_key("EdDSA")
ATTACKER_RSA_KEY = new_key("RS256")

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def forge(
    claims: dict, *, key: bytes = TEST_SECRET.encode(), alg: str = "HS256", **header: Any
) -> str:
    """An HMAC-signed JWT made by hand, as an attacker would: any claim, any header, any key
    (PyJWT refuses to sign some of these, such as a PEM public key as the secret)."""
    signing_input = f"{_segment({'alg': alg, 'typ': 'JWT', **header})}.{_segment(claims)}"
    signature = hmac.new(key, signing_input.encode(), _HASHES[alg]).digest()
    return f"{signing_input}.{_b64(signature)}"


def published_key_token(claims: dict, **header: Any) -> str:
    """A token Better Auth's key really signed, with a header PyJWT would refuse to write."""
    signing_input = f"{_segment({'alg': 'EdDSA', 'typ': 'JWT', **header})}.{_segment(claims)}"
    return f"{signing_input}.{_b64(BETTER_AUTH_KEY.private_key.sign(signing_input.encode()))}"


def unsigned(claims: dict, alg: str, *, trailing_dot: bool) -> str:
    token = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(claims)}"
    return token + "." if trailing_dot else token


def with_payload(token: str, claims: dict) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_segment(claims)}.{signature}"


def with_flipped_signature(token: str) -> str:
    # A flipped bit in the first byte: the last base64 character may carry only padding bits,
    # which decoders ignore, so changing it could leave the signature as it was.
    signing_input, _, signature = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{signing_input}.{_b64(bytes(raw))}"


def secret_claims(**overrides: Any) -> dict:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **overrides}


def strict_claims(**overrides: Any) -> dict:
    return secret_claims(**{"iss": ISSUER, "aud": AUDIENCE, **overrides})


def without(claims: dict, name: str) -> dict:
    return {key: value for key, value in claims.items() if key != name}


def token_of_length(length: int) -> str:
    """A valid shared-secret token exactly `length` characters long, padded with a claim."""
    # Base64 grows by four characters per three bytes: start just short of the length.
    start = max(0, (length - len(forge(secret_claims()))) * 3 // 4 - 16)
    for header_padding in range(4):
        for claim_padding in range(start, length):
            token = forge(
                secret_claims(padding="x" * claim_padding), typ="JWT" + " " * header_padding
            )
            if len(token) == length:
                return token
            if len(token) > length:
                break
    raise AssertionError(f"no token of exactly {length} characters")


def public_key_forms(key: SigningKey) -> dict[str, bytes]:
    public = key.private_key.public_key()
    forms = {
        "pem": public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "der": public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        "jwk": json.dumps(key.public_jwk).encode(),
    }
    if key.algorithm == "EdDSA":
        forms["raw"] = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return forms


@dataclass(frozen=True)
class Issued:
    """What a builder may use: the published-key configurations' issuer and the attacker's."""

    issuer: str
    attacker_url: str

    def claims(self, **overrides: Any) -> dict:
        return claims_for(self.issuer, "alice", **overrides)


Builder = Callable[[Issued], str]


@pytest.fixture(scope="module")
def published_keys() -> Iterator[Any]:
    with jwks_endpoint() as endpoint:
        endpoint.publish(BETTER_AUTH_KEY, RSA_KEY)
        yield endpoint


@pytest.fixture(scope="module")
def attacker_keys() -> Iterator[Any]:
    with jwks_endpoint() as endpoint:
        endpoint.publish(ATTACKER_KEY, ATTACKER_RSA_KEY)
        yield endpoint


@pytest.fixture(scope="module")
def started_clients(settings, published_keys) -> Iterator[Callable[[str], TestClient]]:
    """One app per token configuration, started when a test first needs it:

    - secret: the shared secret with HS256 only, no issuer or audience (the default);
    - strict: the same with an issuer and an audience;
    - keys: Better Auth's published keys only (EdDSA and RS256), issuer and audience its URL;
    - both: the shared secret and the published keys at once.
    """
    with_keys = {"better_auth_url": published_keys.base_url, "jwks_algorithms": ["EdDSA", "RS256"]}
    configurations = {
        "secret": settings,
        "strict": settings.model_copy(update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}),
        "keys": settings.model_copy(update={**with_keys, "better_auth_secret": None}),
        "both": settings.model_copy(update=with_keys),
    }
    with ExitStack() as stack:
        started: dict[str, TestClient] = {}

        def client_for(configuration: str) -> TestClient:
            if configuration not in started:
                started[configuration] = stack.enter_context(
                    running_client(configurations[configuration])
                )
            return started[configuration]

        yield client_for


@pytest.fixture
def client_for(started_clients, db) -> Iterator[Callable[[str], TestClient]]:
    used: list[TestClient] = []

    def client_for(configuration: str) -> TestClient:
        client = started_clients(configuration)
        used.append(client)
        return client

    yield client_for
    # The tables are emptied after each test, so the apps must forget whose rows they wrote.
    for client in used:
        assert isinstance(client.app, FastAPI)
        app_state(client.app).known_users.clear()


@pytest.fixture
def issued(published_keys, attacker_keys) -> Issued:
    return Issued(published_keys.base_url, attacker_keys.base_url)


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _case(configuration: str, authorization: Builder, reason: str | None, case_id: str):
    return pytest.param(configuration, authorization, reason, id=case_id)


REFUSED = [
    # The header itself.
    _case("secret", lambda _: "", "Bearer scheme", "empty header"),
    _case("secret", lambda _: "Basic YWxpY2U6c2VjcmV0", "Bearer scheme", "basic scheme"),
    _case("secret", lambda _: "Token " + forge(secret_claims()), "Bearer scheme", "token scheme"),
    _case(
        "secret",
        lambda _: 'Digest username="alice", realm="tasks", nonce="n", uri="/", response="r"',
        "Bearer scheme",
        "digest scheme",
    ),
    _case("secret", lambda _: "Bearer", None, "bearer without a token"),
    _case("secret", lambda _: "Bearer ", None, "bearer and a space"),
    _case("secret", lambda _: "Bearer not-a-jwt", "well-formed", "malformed token"),
    _case("secret", lambda _: "Bearer a.b.c", "well-formed", "three garbage parts"),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims()).rpartition(".")[0]),
        "well-formed",
        "two-part token",
    ),
    _case("secret", lambda _: _bearer(forge(secret_claims()) + ".c2ln"), None, "four parts"),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims())).replace(" ", "  x "),
        "bearer token",
        "spaces inside",
    ),
    # alg none, in each spelling, with and without the empty signature's dot.
    *(
        _case(
            "secret",
            lambda _, alg=alg, dot=dot: _bearer(unsigned(secret_claims(), alg, trailing_dot=dot)),
            None,
            f"alg {alg} {'with' if dot else 'without'} the trailing dot",
        )
        for alg in ("none", "None", "NONE")
        for dot in (True, False)
    ),
    _case(
        "secret",
        lambda _: _bearer(
            f"{_segment({'alg': 'none'})}.{_segment(secret_claims())}."
            + forge(secret_claims()).rpartition(".")[2]
        ),
        "algorithm",
        "alg none carrying a real signature",
    ),
    # Algorithms that are not configured.
    *(
        _case(
            "secret",
            lambda _, alg=alg: _bearer(forge(secret_claims(), alg=alg)),
            "algorithm",
            f"{alg} with the right secret when only HS256 is configured",
        )
        for alg in ("HS384", "HS512")
    ),
    _case(
        "secret",
        lambda _: _bearer(ATTACKER_RSA_KEY.sign(secret_claims())),
        "algorithm",
        "RS256 when only the shared secret is configured",
    ),
    _case(
        "secret",
        lambda i: _bearer(RSA_KEY.sign(i.claims())),
        "algorithm",
        "RS256 by a key the shared-secret configuration does not publish",
    ),
    _case(
        "keys",
        lambda _: _bearer(forge(secret_claims())),
        "algorithm",
        "HS256 when only published keys are configured",
    ),
    _case(
        "keys",
        lambda i: _bearer(
            jwt.encode(i.claims(), RSA_KEY.private_key, algorithm="RS512", headers={"kid": "x"})
        ),
        "algorithm",
        "RS512 when the published keys allow RS256",
    ),
    # Key confusion: an HMAC token whose secret is a published public key.
    *(
        _case(
            configuration,
            lambda i, key=key, form=form: _bearer(
                forge(i.claims(), key=public_key_forms(key)[form], kid=key.kid)
            ),
            reason,
            f"HS256 keyed with the {key.algorithm} public key as {form}, {configuration}",
        )
        for configuration, reason in (("both", "signature"), ("keys", "algorithm"))
        for key in (BETTER_AUTH_KEY, RSA_KEY)
        for form in public_key_forms(key)
    ),
    # Tampering.
    _case(
        "secret",
        lambda _: _bearer(with_payload(forge(secret_claims()), secret_claims(sub="bob"))),
        "signature",
        "tampered payload, shared secret",
    ),
    _case(
        "secret",
        lambda _: _bearer(with_flipped_signature(forge(secret_claims()))),
        "signature",
        "tampered signature, shared secret",
    ),
    _case(
        "keys",
        lambda i: _bearer(
            with_payload(BETTER_AUTH_KEY.sign(i.claims()), i.claims(sub="bob", name="Bob"))
        ),
        "signature",
        "tampered payload, published key",
    ),
    _case(
        "keys",
        lambda i: _bearer(with_flipped_signature(BETTER_AUTH_KEY.sign(i.claims()))),
        "signature",
        "tampered signature, published key",
    ),
    _case(
        "keys",
        lambda i: _bearer(with_flipped_signature(RSA_KEY.sign(i.claims()))),
        "signature",
        "tampered signature, published RSA key",
    ),
    # Time.
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(exp=int(time.time()) - 120))),
        "expired",
        "expired beyond the leeway, shared secret",
    ),
    _case(
        "keys",
        lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims(exp=int(time.time()) - 120))),
        "expired",
        "expired beyond the leeway, published key",
    ),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(nbf=int(time.time()) + 600))),
        "not yet valid",
        "nbf in the future",
    ),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(iat=int(time.time()) + 600))),
        "not yet valid",
        "iat in the future beyond the leeway",
    ),
    _case(
        "keys",
        lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims(nbf=int(time.time()) + 600))),
        "not yet valid",
        "nbf in the future, published key",
    ),
    # Required claims, one missing at a time.
    *(
        _case(
            configuration,
            lambda i, build=build, name=name: _bearer(build(i, name)),
            name,
            f"{name} missing, {configuration}",
        )
        for configuration, names, build in (
            ("secret", ("sub", "exp"), lambda _, name: forge(without(secret_claims(), name))),
            (
                "strict",
                ("sub", "exp", "iss", "aud"),
                lambda _, name: forge(without(strict_claims(), name)),
            ),
            (
                "keys",
                ("sub", "exp", "iss", "aud"),
                lambda i, name: BETTER_AUTH_KEY.sign(without(i.claims(), name)),
            ),
        )
        for name in names
    ),
    _case("secret", lambda _: _bearer(forge(secret_claims(sub=None))), "sub", "sub null"),
    _case("secret", lambda _: _bearer(forge(secret_claims(exp=None))), "exp", "exp null"),
    # Issuer and audience.
    _case(
        "strict",
        lambda _: _bearer(forge(strict_claims(iss="https://evil.example"))),
        "issuer",
        "wrong issuer, shared secret",
    ),
    _case(
        "strict",
        lambda _: _bearer(forge(strict_claims(aud="another-api"))),
        "audience",
        "wrong audience, shared secret",
    ),
    _case(
        "keys",
        lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims(iss="https://evil.example"))),
        "issuer",
        "wrong issuer, published key",
    ),
    _case(
        "keys",
        lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims(aud=["https://another-app.example"]))),
        "audience",
        "wrong audience, published key",
    ),
    # Claims of the wrong type, whether or not the configuration checks the claim.
    *(
        _case(
            configuration,
            lambda _, build=build, value=value, name=name: _bearer(forge(build(**{name: value}))),
            None,
            f"{name} {label}, {configuration}",
        )
        for configuration, build in (("secret", secret_claims), ("strict", strict_claims))
        for name, value, label in (
            ("sub", 42, "a number"),
            ("sub", "", "empty"),
            ("sub", ["alice"], "a list"),
            ("exp", "tomorrow", "a string"),
            ("exp", str(int(time.time()) + 600), "a numeric string"),
            ("exp", True, "a boolean"),
            ("iat", "yesterday", "a string"),
            ("iat", str(int(time.time())), "a numeric string"),
            ("iat", True, "a boolean"),
            ("nbf", str(int(time.time())), "a numeric string"),
            ("aud", {"aud": AUDIENCE}, "an object"),
            ("aud", [AUDIENCE, 7], "a list holding a number"),
            ("aud", None, "null"),
            ("iss", {"iss": ISSUER}, "an object"),
            ("iss", 7, "a number"),
            ("jti", 7, "a number"),
        )
    ),
    # Size: a token one byte over the limit is refused however valid it is.
    _case(
        "secret",
        lambda _: _bearer(token_of_length(MAX_TOKEN_BYTES + 1)),
        f"longer than {MAX_TOKEN_BYTES}",
        "a valid token one byte over 8 KiB",
    ),
    # (Past 16 KiB of headers the header limit answers first, with a 431: test_header_limit.)
    _case(
        "secret",
        lambda _: _bearer(token_of_length(MAX_TOKEN_BYTES + MAX_TOKEN_BYTES // 2)),
        f"longer than {MAX_TOKEN_BYTES}",
        "a valid token of 12 KiB",
    ),
    # kid tricks: a kid names no file, row or key of the attacker's choosing.
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(), kid=123)),
        "well-formed",
        "kid a number, shared secret",
    ),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(), key=b"", kid="../../../../../../dev/null")),
        "signature",
        "kid path traversal to an empty key, shared secret",
    ),
    _case(
        "secret",
        lambda _: _bearer(
            forge(secret_claims(), key=b"attacker", kid="x' UNION SELECT 'attacker' --")
        ),
        "signature",
        "kid with SQL choosing the key, shared secret",
    ),
    _case(
        "keys",
        lambda i: _bearer(published_key_token(i.claims(), kid=7)),
        "well-formed",
        "kid a number, published key",
    ),
    _case(
        "keys",
        lambda i: _bearer(ATTACKER_KEY.sign(i.claims(), kid="../../../../../../dev/null")),
        "published key",
        "kid path traversal, published key",
    ),
    _case(
        "keys",
        lambda i: _bearer(ATTACKER_KEY.sign(i.claims(), kid="x' OR '1'='1")),
        "published key",
        "kid with SQL, published key",
    ),
    _case(
        "keys",
        lambda i: _bearer(ATTACKER_KEY.sign(i.claims(), kid=BETTER_AUTH_KEY.kid)),
        "signature",
        "a published kid on an attacker's signature",
    ),
    # Headers that would let the token name its own key must be ignored.
    _case(
        "keys",
        lambda i: _bearer(ATTACKER_KEY.sign(i.claims(), jku=i.attacker_url)),
        "published key",
        "jku pointing at the attacker's key set",
    ),
    _case(
        "keys",
        lambda i: _bearer(
            ATTACKER_RSA_KEY.sign(i.claims(), x5u=f"{i.attacker_url}/cert.pem", kid=RSA_KEY.kid)
        ),
        "signature",
        "x5u pointing at the attacker's certificate",
    ),
    _case(
        "keys",
        lambda i: _bearer(ATTACKER_KEY.sign(i.claims(), jwk=ATTACKER_KEY.public_jwk)),
        "published key",
        "jwk embedding the attacker's key",
    ),
    _case(
        "keys",
        lambda i: _bearer(
            ATTACKER_KEY.sign(i.claims(), jwk=ATTACKER_KEY.public_jwk, kid=BETTER_AUTH_KEY.kid)
        ),
        "signature",
        "jwk embedding the attacker's key under a published kid",
    ),
    _case(
        "both",
        lambda i: _bearer(
            forge(
                i.claims(),
                key=b"attacker",
                jwk={"kty": "oct", "k": _b64(b"attacker")},
                jku=i.attacker_url,
            )
        ),
        "signature",
        "jwk embedding an attacker's HMAC secret",
    ),
]


@pytest.mark.parametrize(("configuration", "authorization", "reason"), REFUSED)
def test_a_bad_token_is_a_401_that_costs_no_database_connection(
    client_for, db, issued, attacker_keys, configuration, authorization, reason
):
    client = client_for(configuration)
    header = authorization(issued)

    with pool_use() as used:
        response = client.post(
            LIST, json={"title": "must not be stored"}, headers={"Authorization": header}
        )

    body = assert_problem(response, 401)
    if reason is not None:
        assert reason.lower() in body["detail"].lower()
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert dict(used) == {}
    assert task_count(db) == 0
    assert user_count(db) == 0
    # A key named in the token is never fetched, whatever it points at.
    assert attacker_keys.hits == 0


ACCEPTED = [
    _case("secret", lambda _: _bearer(forge(secret_claims())), None, "a valid shared-secret token"),
    _case("strict", lambda _: _bearer(forge(strict_claims())), None, "a valid token, strict"),
    _case("secret", lambda _: "bearer " + forge(secret_claims()), None, "lowercase bearer"),
    _case("secret", lambda _: "BEARER " + forge(secret_claims()), None, "uppercase bearer"),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(exp=int(time.time()) - 10))),
        None,
        "expired within the leeway",
    ),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(iat=int(time.time()) + 10))),
        None,
        "iat in the future within the leeway",
    ),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(exp=int(time.time()) + 600.5))),
        None,
        "exp a fraction, as RFC 7519 allows",
    ),
    _case(
        "secret",
        lambda _: _bearer(forge(secret_claims(aud=["some-api", "other-api"]))),
        None,
        "aud a list of strings when no audience is configured",
    ),
    _case(
        "secret",
        lambda _: _bearer(token_of_length(MAX_TOKEN_BYTES)),
        None,
        "a token of exactly 8 KiB",
    ),
    _case("keys", lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims())), None, "Better Auth EdDSA"),
    _case("keys", lambda i: _bearer(RSA_KEY.sign(i.claims())), None, "a published RSA key"),
    _case(
        "keys",
        lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims(exp=int(time.time()) - 10))),
        None,
        "published key, expired within the leeway",
    ),
    _case("both", lambda _: _bearer(forge(secret_claims())), None, "shared secret, both on"),
    _case(
        "both", lambda i: _bearer(BETTER_AUTH_KEY.sign(i.claims())), None, "published key, both on"
    ),
]


@pytest.mark.parametrize(("configuration", "authorization", "reason"), ACCEPTED)
def test_a_good_token_is_accepted(client_for, issued, configuration, authorization, reason):
    # The refusals above mean something only if the same apps accept what they should.
    client = client_for(configuration)

    response = client.get(LIST, headers={"Authorization": authorization(issued)})

    assert response.status_code == 200, response.text
    assert response.json() == []


def test_a_flood_of_unknown_kids_does_not_refetch_the_key_set_each_time(settings, db):
    with jwks_endpoint() as key_set:
        key_set.publish(BETTER_AUTH_KEY)
        keys_only = settings.model_copy(
            update={"better_auth_secret": None, "better_auth_url": key_set.base_url}
        )
        with running_client(keys_only) as client:
            good = BETTER_AUTH_KEY.sign(claims_for(key_set.base_url))
            assert client.get(LIST, headers={"Authorization": _bearer(good)}).status_code == 200
            statuses = []
            assert isinstance(client.app, FastAPI)
            with pool_use() as used:
                for _ in range(50):
                    stranger = ATTACKER_KEY.sign(claims_for(key_set.base_url), kid=uuid.uuid4().hex)
                    response = client.get(LIST, headers={"Authorization": _bearer(stranger)})
                    statuses.append(response.status_code)

    assert statuses == [401] * 50
    assert dict(used) == {}
    # One fetch for the good token, and at most one more within the refetch interval.
    assert key_set.hits <= 2


# The verified-token cache, through HTTP: what a cached token may no longer do.


def test_a_cached_token_is_accepted_without_verifying_it_again(client_for, monkeypatch):
    checked = count_shared_secret_checks(monkeypatch)
    client = client_for("secret")
    # Its own `jti`: an earlier test's token of the same second is already in this app's cache.
    token = forge(secret_claims(jti=uuid.uuid4().hex))

    statuses = [
        client.get(LIST, headers={"Authorization": _bearer(token)}).status_code for _ in range(3)
    ]

    assert statuses == [200, 200, 200]
    assert checked == [token]


def test_a_tampered_copy_of_a_cached_token_is_refused(client_for, db):
    client = client_for("secret")
    token = forge(secret_claims())
    assert client.get(LIST, headers={"Authorization": _bearer(token)}).status_code == 200

    for tampered in (with_flipped_signature(token), with_payload(token, secret_claims(sub="bob"))):
        with pool_use() as used:
            response = client.post(
                "/api/bob/tasks",
                json={"title": "must not be stored"},
                headers={"Authorization": _bearer(tampered)},
            )
        assert_problem(response, 401)
        assert dict(used) == {}
    assert task_count(db) == 0


def test_a_token_that_expires_while_cached_is_refused(settings, db):
    with running_client(settings.model_copy(update={"jwt_leeway_seconds": 0})) as client:
        # Made once the app is up, so that a slow start cannot spend the token's life: at least
        # one whole second of it is left for the first request.
        expires = int(time.time()) + 2
        token = forge(secret_claims(exp=expires))
        assert client.get(LIST, headers={"Authorization": _bearer(token)}).status_code == 200
        time.sleep(max(0.0, expires + 0.05 - time.time()))
        response = client.get(LIST, headers={"Authorization": _bearer(token)})

    assert "expired" in assert_problem(response, 401)["detail"]


def test_a_token_whose_key_was_withdrawn_is_refused_after_the_refetch(settings, db):
    with jwks_endpoint() as key_set:
        key_set.publish(BETTER_AUTH_KEY)
        keys_only = settings.model_copy(
            update={
                "better_auth_secret": None,
                "better_auth_url": key_set.base_url,
                "jwks_refetch_interval_seconds": 0,
            }
        )
        with running_client(keys_only) as client:
            old = BETTER_AUTH_KEY.sign(claims_for(key_set.base_url))
            accepted = [
                client.get(LIST, headers={"Authorization": _bearer(old)}).status_code
                for _ in range(2)
            ]
            # The frontend rotates to a new key and withdraws the old one.
            rotated = new_key("EdDSA")
            key_set.publish(rotated)
            fresh = rotated.sign(claims_for(key_set.base_url))
            rotated_status = client.get(LIST, headers={"Authorization": _bearer(fresh)}).status_code
            response = client.get(LIST, headers={"Authorization": _bearer(old)})

    assert accepted == [200, 200]
    assert rotated_status == 200
    assert "published key" in assert_problem(response, 401)["detail"]
