"""Token verification through HTTP: each refusal is a 401 problem; the path owner is checked."""

import base64
import json
import time
import warnings
from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from main import create_app
from shared.auth import CurrentUser, TaskOwner
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET
from tests.keys import claims_for, jwks_endpoint, new_key
from tests.support import assert_problem, stored_user, task_count

LIST = "/api/alice/tasks"


def _token(claims: dict, *, key: str = TEST_SECRET, algorithm: str = "HS256", headers=None) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _claims(**overrides) -> dict:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **overrides}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_valid_token_is_accepted(client, auth_headers):
    assert client.get(LIST, headers=auth_headers("alice")).status_code == 200


def test_the_scheme_is_case_insensitive(client):
    token = _token(_claims())

    assert client.get(LIST, headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_a_missing_token_is_a_bare_bearer_challenge(client):
    response = client.get(LIST)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("", id="empty header"),
        pytest.param("Bearer", id="scheme without token"),
        pytest.param("Bearer ", id="scheme and a space"),
        pytest.param("Basic YWxpY2U6c2VjcmV0", id="basic scheme"),
        pytest.param("Token abc.def.ghi", id="another scheme"),
        pytest.param("Bearer not-a-jwt", id="not a JWT"),
        pytest.param("Bearer abc.def", id="two parts"),
        pytest.param("Bearer a.b.c", id="three garbage parts"),
        pytest.param("Bearer a b c", id="spaces inside"),
        pytest.param("Bearer " + "a" * 9000, id="over 8 KiB"),
    ],
)
def test_malformed_authorization_is_401(client, db, authorization):
    response = client.post(LIST, json={"title": "x"}, headers={"Authorization": authorization})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert task_count(db) == 0


def test_an_expired_token_is_401_and_says_so(client):
    response = client.get(
        LIST, headers={"Authorization": f"Bearer {_token(_claims(exp=int(time.time()) - 120))}"}
    )

    body = assert_problem(response, 401)
    assert "expired" in body["detail"]
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_token_expired_within_the_leeway_is_still_accepted(client):
    token = _token(_claims(exp=int(time.time()) - 10))

    assert client.get(LIST, headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            _token(_claims(), key="another-secret-that-is-also-long-enough!!"), id="wrong key"
        ),
        pytest.param(
            _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".", id="alg none"
        ),
        pytest.param(_b64({"alg": "none"}) + "." + _b64(_claims()), id="alg none, no dot"),
        pytest.param(
            _token(_claims()).rsplit(".", 1)[0] + "." + _b64({"x": 1}), id="tampered signature"
        ),
        pytest.param(
            _token(_claims()).split(".")[0]
            + "."
            + _b64(_claims(sub="bob"))
            + "."
            + _token(_claims()).split(".")[2],
            id="tampered payload",
        ),
        pytest.param(_token({"exp": int(time.time()) + 600}), id="no sub"),
        pytest.param(_token({"sub": "alice"}), id="no exp"),
        pytest.param(_token(_claims(sub=42)), id="sub a number"),
        pytest.param(_token(_claims(sub="")), id="sub empty"),
        pytest.param(_token(_claims(sub="a" * 256)), id="sub too long"),
        pytest.param(_token(_claims(exp="tomorrow")), id="exp a string"),
        pytest.param(_token(_claims(nbf=int(time.time()) + 600)), id="not yet valid"),
        pytest.param(_token(_claims(email=["a@b.c"])), id="email a list"),
        pytest.param(_token(_claims(name="nul\x00")), id="name with NUL"),
    ],
)
def test_bad_tokens_are_401_problems(client, db, token):
    response = client.post(LIST, json={"title": "x"}, headers={"Authorization": f"Bearer {token}"})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert task_count(db) == 0


def test_an_algorithm_that_is_not_configured_is_refused_even_with_the_right_key(client):
    with warnings.catch_warnings():
        # PyJWT rightly warns that our 52-byte test secret is short for HS512.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        token = _token(_claims(), algorithm="HS512")

    response = client.get(LIST, headers={"Authorization": f"Bearer {token}"})

    body = assert_problem(response, 401)
    assert "algorithm" in body["detail"]


def test_another_persons_path_is_403(client, auth_headers):
    response = client.get("/api/bob/tasks", headers=auth_headers("alice"))

    assert_problem(response, 403)


def test_unknown_routes_under_api_need_a_token_first(client):
    assert_problem(client.get("/api/alice/secrets"), 401)


def test_a_route_outside_api_that_takes_the_caller_fails_closed(settings, auth_headers):
    # The middleware checks tokens under /api/ only; the dependencies refuse to make up a
    # caller anywhere else, even with a valid token the middleware never looked at.
    app = create_app(settings)

    @app.get("/elsewhere/{user_id}")
    async def elsewhere(owner: TaskOwner) -> str:
        return owner.id

    @app.get("/whoami")
    async def whoami(user: CurrentUser) -> str:
        return user.id

    with TestClient(app) as outside:
        for path in ("/elsewhere/alice", "/whoami"):
            for headers in ({}, auth_headers("alice")):
                response = outside.get(path, headers=headers)
                assert_problem(response, 401)
                assert response.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def strict_settings(settings):
    return settings.model_copy(
        update={"jwt_issuer": "http://localhost:3000", "jwt_audience": "tasks-api"}
    )


def test_issuer_and_audience_are_checked_when_configured(strict_settings, db):
    with TestClient(create_app(strict_settings)) as strict_client:
        good = mint_token(strict_settings, "alice")
        wrong_issuer = _token(_claims(iss="https://evil.example", aud="tasks-api"))
        wrong_audience = _token(_claims(iss="http://localhost:3000", aud="another-api"))
        neither = _token(_claims())

        assert (
            strict_client.get(LIST, headers={"Authorization": f"Bearer {good}"}).status_code == 200
        )
        for token in (wrong_issuer, wrong_audience, neither):
            assert_problem(
                strict_client.get(LIST, headers={"Authorization": f"Bearer {token}"}), 401
            )


def test_a_bad_token_costs_no_database_connection(settings):
    unreachable = settings.model_copy(
        update={
            "database_url": settings.database_url.__class__("postgresql://nobody@127.0.0.1:1/none")
        }
    )
    with TestClient(create_app(unreachable)) as offline_client:
        refused = offline_client.get(LIST, headers={"Authorization": "Bearer a.b.c"})
        accepted = offline_client.get(
            LIST, headers={"Authorization": f"Bearer {mint_token(unreachable, 'alice')}"}
        )

    assert_problem(refused, 401)
    # The same app with a good token does reach for the database, and finds it down.
    assert_problem(accepted, 503)
    assert accepted.headers["retry-after"]


def test_minted_tokens_expire_when_asked(settings):
    token = mint_token(settings, "alice", lifetime=timedelta(minutes=5))
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])

    assert claims["exp"] - claims["iat"] == 300


@pytest.fixture
def key_set():
    with jwks_endpoint() as endpoint:
        endpoint.publish(new_key("EdDSA", publish_alg=False))
        yield endpoint


@pytest.fixture
def key_set_client(settings, key_set, db):
    """The app verifying Better Auth's published keys only: no shared secret at all."""
    jwks_settings = settings.model_copy(
        update={"better_auth_secret": None, "better_auth_url": key_set.base_url}
    )
    with TestClient(create_app(jwks_settings)) as jwks_client:
        yield jwks_client


def test_a_token_signed_by_a_published_key_reaches_the_api(key_set_client, key_set, db):
    token = key_set.keys[0].sign(claims_for(key_set.base_url, "alice"))

    response = key_set_client.post(
        LIST, json={"title": "via JWKS"}, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 201
    user = stored_user(db, "alice")
    assert (user.email, user.name) == ("alice@example.com", "Alice")


def test_with_only_published_keys_a_shared_secret_token_is_401(key_set_client):
    token = _token(_claims())

    response = key_set_client.get(LIST, headers={"Authorization": f"Bearer {token}"})

    body = assert_problem(response, 401)
    assert "algorithm" in body["detail"]


def test_an_unavailable_key_set_is_a_503_problem(key_set_client, key_set):
    key_set.status = 502
    token = key_set.keys[0].sign(claims_for(key_set.base_url))

    response = key_set_client.get(LIST, headers={"Authorization": f"Bearer {token}"})

    assert_problem(response, 503)
    assert response.headers["retry-after"]
