"""Better Auth session tokens (its bearer plugin's `set-auth-token`), through HTTP, with a loopback
server standing in for the frontend's `/api/auth/get-session` (and its `/api/auth/jwks`).

The real `better-auth` package answers the same way in tests/e2e/test_better_auth.py; here the
stand-in is steered to be slow, broken, signed out or flooded, and counts every lookup.
"""

import asyncio
import base64
import hashlib
import hmac
import io
import json
import secrets
import string
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from main import create_app, main
from shared.logging import configure_logging
from shared.tokens import (
    AuthenticatedUser,
    PublicKeyVerifier,
    SharedSecretVerifier,
    create_token_verifier,
)
from tests.conftest import TEST_SECRET, settings_for_test
from tests.keys import SigningKey, claims_for, loopback_http_server, new_key
from tests.support import assert_problem, stored_task, stored_user, stored_user_or_none, task_count

FRONTEND_SECRET = b"the-frontend's-own-better-auth-secret"


def session_token() -> str:
    """A token as Better Auth's bearer plugin hands it out: the session token (32 letters and
    digits) and its cookie signature, HMAC-SHA256 in standard base64."""
    raw = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    signature = hmac.new(FRONTEND_SECRET, raw.encode(), hashlib.sha256).digest()
    return f"{raw}.{base64.b64encode(signature).decode()}"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Frontend:
    """What the stand-in answers: the sessions it knows, or a failure the test chose."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sessions: dict[str, dict] = {}
        self.status = 200
        self.raw_body: bytes | None = None  # when set, sent instead of the session
        self.delay_seconds = 0.0
        self.gate = threading.Event()  # lookups wait for it; set unless a test holds it
        self.gate.set()
        self.keys: list[SigningKey] = []
        self.lookups = 0
        self.tokens_seen: list[str] = []
        self.jwks_hits = 0
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()

    def sign_in(
        self,
        user_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        expires_in: timedelta = timedelta(days=7),
    ) -> str:
        token = session_token()
        now = datetime.now(UTC)
        self.sessions[token] = {
            "session": {
                "id": secrets.token_hex(8),
                "token": token.partition(".")[0],
                "userId": user_id,
                "expiresAt": iso(now + expires_in),
                "createdAt": iso(now),
                "updatedAt": iso(now),
                "ipAddress": "127.0.0.1",
                "userAgent": "test",
            },
            "user": {
                "id": user_id,
                "email": email if email is not None else f"{user_id}@example.com",
                "name": name if name is not None else user_id.title(),
                "emailVerified": False,
                "image": None,
                "createdAt": iso(now),
                "updatedAt": iso(now),
            },
        }
        return token

    def sign_out(self, token: str) -> None:
        del self.sessions[token]

    def answer(self, authorization: str | None) -> tuple[int, bytes]:
        with self._lock:
            self.lookups += 1
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            token = (authorization or "").removeprefix("Bearer ")
            self.tokens_seen.append(token)
            self.gate.wait(timeout=30)
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            if self.raw_body is not None:
                return self.status, self.raw_body
            return self.status, json.dumps(self.sessions.get(token)).encode()
        finally:
            with self._lock:
                self.concurrent -= 1


@contextmanager
def better_auth_frontend() -> Iterator[Frontend]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/api/auth/get-session":
                status, body = frontend.answer(self.headers.get("Authorization"))
            elif self.path == "/api/auth/jwks":
                frontend.jwks_hits += 1
                status = 200
                body = json.dumps({"keys": [key.public_jwk for key in frontend.keys]}).encode()
            else:
                status, body = 404, b"{}"
            try:
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the API gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_http_server(Handler) as base_url:
        frontend = Frontend(base_url)
        try:
            yield frontend
        finally:
            frontend.gate.set()  # no lookup left waiting when the server stops


@pytest.fixture
def frontend() -> Iterator[Frontend]:
    with better_auth_frontend() as stand_in:
        yield stand_in


@pytest.fixture
def api(settings, frontend, db):
    """Start the API against the stand-in, with session tokens on and these settings changed."""
    clients: list[TestClient] = []

    def start(**changes: Any) -> TestClient:
        values = {
            "better_auth_secret": None,
            "better_auth_url": frontend.base_url,
            "better_auth_session_tokens": True,
            "better_auth_session_timeout_seconds": 1.0,
            **changes,
        }
        client = TestClient(create_app(settings.model_copy(update=values)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_session_token_works_and_fills_the_users_row(api, frontend, db):
    client = api()
    token = frontend.sign_in("alice", email="alice@example.com", name="Alice")

    created = client.post("/api/alice/tasks", json={"title": "By session"}, headers=bearer(token))

    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == "alice"
    assert stored_task(db, created.json()["id"]).title == "By session"
    user = stored_user(db, "alice")
    assert (user.email, user.name) == ("alice@example.com", "Alice")
    # The token went to get-session exactly as the frontend handed it out.
    assert frontend.tokens_seen == [token]


def test_a_session_token_on_another_persons_path_is_403(api, frontend, db):
    client = api()
    token = frontend.sign_in("alice")

    response = client.post("/api/bob/tasks", json={"title": "Not mine"}, headers=bearer(token))

    assert_problem(response, 403)
    assert task_count(db) == 0


def test_the_bare_token_without_its_signature_is_also_looked_up(api, frontend):
    # The bearer plugin signs a bare token itself (unless `requireSignature`): the frontend decides.
    client = api()
    signed = frontend.sign_in("alice")
    bare = signed.partition(".")[0]
    frontend.sessions[bare] = frontend.sessions[signed]

    assert client.get("/api/alice/tasks", headers=bearer(bare)).status_code == 200
    assert frontend.tokens_seen == [bare]


def test_an_expired_session_is_401(api, frontend, db):
    client = api()
    token = frontend.sign_in("alice", expires_in=timedelta(seconds=-1))

    response = client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(token))

    body = assert_problem(response, 401)
    assert "expired" in body["detail"]
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert task_count(db) == 0


def test_a_signed_out_token_is_401(api, frontend, db):
    client = api()

    response = client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(session_token()))

    body = assert_problem(response, 401)
    assert "signed out" in body["detail"]
    assert task_count(db) == 0
    assert stored_user_or_none(db, "alice") is None


@pytest.mark.parametrize(
    ("user_changes", "reason"),
    [
        pytest.param({"id": "a" * 256}, "user id", id="user id too long"),
        pytest.param({"id": ""}, "user id", id="empty user id"),
        pytest.param({"name": "Nul\x00Byte"}, "'name' this service cannot store", id="NUL in name"),
        pytest.param({"email": "\ud800@example.com"}, "'email'", id="lone surrogate in email"),
    ],
)
def test_a_session_whose_user_cannot_be_stored_is_401(api, frontend, db, user_changes, reason):
    client = api()
    token = frontend.sign_in("alice")
    session = frontend.sessions[token]
    session["user"].update(user_changes)
    session["session"]["userId"] = session["user"]["id"]

    response = client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(token))

    body = assert_problem(response, 401)
    assert reason in body["detail"]
    assert task_count(db) == 0
    assert stored_user_or_none(db, "alice") is None


def test_a_confirmed_session_is_not_looked_up_again_within_the_cache_time(api, frontend):
    client = api(better_auth_session_cache_seconds=60)
    token = frontend.sign_in("alice")

    for _ in range(5):
        assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200

    assert frontend.lookups == 1


def test_a_confirmed_session_is_looked_up_again_after_the_cache_time(api, frontend):
    client = api(better_auth_session_cache_seconds=0.5)
    token = frontend.sign_in("alice")

    assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200
    time.sleep(0.8)
    assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200

    assert frontend.lookups == 2


def test_a_sign_out_is_honoured_once_the_cache_time_has_passed(api, frontend):
    client = api(better_auth_session_cache_seconds=1)
    token = frontend.sign_in("alice")
    assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200

    frontend.sign_out(token)
    time.sleep(1.2)
    response = client.get("/api/alice/tasks", headers=bearer(token))

    assert_problem(response, 401)
    assert frontend.lookups == 2


def test_a_session_is_never_kept_past_its_expiry(api, frontend):
    # The frontend would keep answering (say it is wrong about its clock): the cache time is
    # long, but the session's own expiry ends the entry, and the next lookup sees it expired.
    client = api(better_auth_session_cache_seconds=300)
    token = frontend.sign_in("alice", expires_in=timedelta(seconds=1.5))
    assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200

    time.sleep(2)
    response = client.get("/api/alice/tasks", headers=bearer(token))

    body = assert_problem(response, 401)
    assert "expired" in body["detail"]
    assert frontend.lookups == 2


def test_concurrent_requests_with_one_token_share_one_lookup(api, frontend):
    client = api(better_auth_session_cache_seconds=60, better_auth_session_timeout_seconds=20)
    token = frontend.sign_in("alice")
    frontend.gate.clear()  # every lookup waits until all requests have arrived

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = [
            pool.submit(client.get, "/api/alice/tasks", headers=bearer(token)) for _ in range(8)
        ]
        time.sleep(1.5)
        frontend.gate.set()
        statuses = [response.result(timeout=30).status_code for response in responses]

    assert statuses == [200] * 8
    assert frontend.lookups == 1


def test_a_refused_token_is_remembered_for_a_while(api, frontend):
    client = api(better_auth_session_refused_seconds=60)
    token = session_token()

    for _ in range(4):
        assert_problem(client.get("/api/alice/tasks", headers=bearer(token)), 401)

    assert frontend.lookups == 1


def test_a_refused_token_is_asked_about_again_after_the_refused_time(api, frontend):
    client = api(better_auth_session_refused_seconds=0.5)
    token = session_token()

    assert_problem(client.get("/api/alice/tasks", headers=bearer(token)), 401)
    time.sleep(0.8)
    assert_problem(client.get("/api/alice/tasks", headers=bearer(token)), 401)

    assert frontend.lookups == 2


def test_lookups_beyond_the_budget_are_503_while_known_tokens_keep_working(api, frontend, db):
    client = api(
        better_auth_session_lookup_burst=2,
        better_auth_session_lookups_per_second=0.01,
        better_auth_session_refused_seconds=60,
    )
    known = frontend.sign_in("alice")
    refused = session_token()
    assert client.get("/api/alice/tasks", headers=bearer(known)).status_code == 200
    assert_problem(client.get("/api/alice/tasks", headers=bearer(refused)), 401)

    flood = [
        client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(session_token()))
        for _ in range(5)
    ]

    for response in flood:
        body = assert_problem(response, 503)
        assert "Too many new sessions" in body["detail"]
        assert int(response.headers["retry-after"]) >= 1
    assert frontend.lookups == 2
    assert task_count(db) == 0
    # What the caches already know is answered without a lookup, budget or not.
    assert client.get("/api/alice/tasks", headers=bearer(known)).status_code == 200
    assert_problem(client.get("/api/alice/tasks", headers=bearer(refused)), 401)
    assert frontend.lookups == 2


def test_the_budget_refills(api, frontend):
    client = api(better_auth_session_lookup_burst=1, better_auth_session_lookups_per_second=2)
    assert_problem(client.get("/api/alice/tasks", headers=bearer(session_token())), 401)
    assert_problem(client.get("/api/alice/tasks", headers=bearer(session_token())), 503)

    time.sleep(0.8)

    assert_problem(client.get("/api/alice/tasks", headers=bearer(session_token())), 401)
    assert frontend.lookups == 2


def test_the_cache_holds_at_most_its_entries(api, frontend):
    client = api(better_auth_session_cache_entries=2, better_auth_session_cache_seconds=60)
    tokens = [frontend.sign_in(user) for user in ("alice", "bob", "carol")]
    for user, token in zip(("alice", "bob", "carol"), tokens, strict=True):
        assert client.get(f"/api/{user}/tasks", headers=bearer(token)).status_code == 200

    # alice's entry, the least recently used, made room for carol's.
    assert client.get("/api/alice/tasks", headers=bearer(tokens[0])).status_code == 200

    assert frontend.lookups == 4


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # A failure is never read as "signed out", even with get-session's `null` as its body.
        pytest.param(500, b"null", id="500"),
        pytest.param(503, b'{"message": "down"}', id="503"),
        pytest.param(429, b"null", id="429 from Better Auth"),
        pytest.param(302, b"null", id="redirect"),
        pytest.param(401, b"null", id="401"),
        pytest.param(200, b"<html>login</html>", id="not JSON"),
        pytest.param(200, b"[]", id="not an object"),
        pytest.param(200, b'{"session": null, "user": null}', id="no session"),
        pytest.param(
            200,
            b'{"session": {"userId": "alice"}, "user": {"id": "alice"}}',
            id="no expiry",
        ),
        pytest.param(
            200,
            b'{"session": {"expiresAt": "soon"}, "user": {"id": "alice"}}',
            id="expiry not a time",
        ),
        pytest.param(
            200,
            b'{"session": {"expiresAt": "2999-01-01T00:00:00"}, "user": {"id": "alice"}}',
            id="expiry without a zone",
        ),
        pytest.param(
            200,
            b'{"session": {"userId": "bob", "expiresAt": "2999-01-01T00:00:00Z"},'
            b' "user": {"id": "alice"}}',
            id="session of another user",
        ),
        pytest.param(
            200,
            b'{"session": {"expiresAt": "2999-01-01T00:00:00Z"},'
            b' "user": {"id": "alice", "email": 7}}',
            id="email not a string",
        ),
    ],
)
def test_a_frontend_that_cannot_answer_is_a_503_and_nothing_is_remembered(
    api, frontend, db, status, body
):
    client = api()
    token = frontend.sign_in("alice")
    frontend.status, frontend.raw_body = status, body

    response = client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(token))

    problem = assert_problem(response, 503)
    assert "cannot confirm sessions" in problem["detail"]
    assert response.headers["retry-after"]
    assert task_count(db) == 0
    # Once the frontend answers again, the same token works: the failure was not cached.
    frontend.status, frontend.raw_body = 200, None
    assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200
    assert frontend.lookups == 2


def test_a_caller_going_away_does_not_cancel_the_lookup_others_wait_for(frontend):
    settings = settings_for_test(better_auth_url=frontend.base_url, better_auth_session_tokens=True)
    token = frontend.sign_in("alice")
    frontend.gate.clear()

    async def run() -> AuthenticatedUser:
        async with httpx2.AsyncClient() as client:
            verifier = create_token_verifier(settings, client)
            leaving = asyncio.ensure_future(verifier.verify(token))
            staying = asyncio.ensure_future(verifier.verify(token))
            for _ in range(1000):  # until the lookup is at the frontend
                if frontend.lookups:
                    break
                await asyncio.sleep(0.01)
            leaving.cancel()
            await asyncio.sleep(0.1)
            frontend.gate.set()
            return await staying

    assert asyncio.run(run()) == AuthenticatedUser("alice", "alice@example.com", "Alice")
    assert frontend.lookups == 1


def test_a_frontend_slower_than_the_timeout_is_a_503(api, frontend):
    client = api(better_auth_session_timeout_seconds=0.3)
    token = frontend.sign_in("alice")
    frontend.delay_seconds = 3

    started = time.monotonic()
    response = client.get("/api/alice/tasks", headers=bearer(token))

    assert_problem(response, 503)
    assert response.headers["retry-after"]
    assert time.monotonic() - started < 2.5


def test_a_frontend_that_is_down_is_a_503(settings, db):
    with better_auth_frontend() as gone:
        url = gone.base_url
    values = {
        "better_auth_secret": None,
        "better_auth_url": url,
        "better_auth_session_tokens": True,
    }
    with TestClient(create_app(settings.model_copy(update=values))) as client:
        response = client.get("/api/alice/tasks", headers=bearer(session_token()))

    assert_problem(response, 503)


def test_jwt_shaped_tokens_never_reach_get_session(api, frontend):
    key = new_key("EdDSA")
    frontend.keys = [key]
    client = api(better_auth_secret=SecretStr(TEST_SECRET))
    published = key.sign(claims_for(frontend.base_url, "alice"))
    shared = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, TEST_SECRET)

    assert client.get("/api/alice/tasks", headers=bearer(published)).status_code == 200
    assert client.get("/api/alice/tasks", headers=bearer(shared)).status_code == 200
    for garbage in ("a.b.c", "abcdefghijklmnopqrstuvwxyz.abc.def", published + "x"):
        assert_problem(client.get("/api/alice/tasks", headers=bearer(garbage)), 401)

    assert frontend.lookups == 0


def test_session_tokens_never_reach_the_jwt_verifiers(api, frontend, monkeypatch):
    def must_not_be_called(*_args: Any) -> None:
        raise AssertionError("a session token reached a JWT verifier")

    monkeypatch.setattr(SharedSecretVerifier, "verify", must_not_be_called)
    monkeypatch.setattr(PublicKeyVerifier, "verify", must_not_be_called)
    frontend.keys = [new_key("EdDSA")]
    client = api(better_auth_secret=SecretStr(TEST_SECRET))
    token = frontend.sign_in("alice")

    assert client.get("/api/alice/tasks", headers=bearer(token)).status_code == 200
    assert_problem(client.get("/api/alice/tasks", headers=bearer(session_token())), 401)
    assert frontend.jwks_hits == 0
    assert frontend.lookups == 2


def test_without_the_setting_a_session_token_is_401_and_nobody_is_asked(api, frontend):
    client = api(better_auth_session_tokens=False)
    token = frontend.sign_in("alice")

    response = client.get("/api/alice/tasks", headers=bearer(token))

    body = assert_problem(response, 401)
    assert "not configured for Better Auth session tokens" in body["detail"]
    assert (frontend.lookups, frontend.jwks_hits) == (0, 0)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param("a" * 301, "longer than 300 characters", id="too long"),
        pytest.param("A" * 256, "neither a JWT nor", id="session token too long"),
        pytest.param("abc123", "neither a JWT nor", id="too short"),
        pytest.param("a" * 32 + ".c2hvcnQ=", "neither a JWT nor", id="signature too short"),
        pytest.param(
            "a" * 32 + "." + "A" * 43 + "==", "neither a JWT nor", id="signature too long"
        ),
        pytest.param("a" * 32 + ".", "neither a JWT nor", id="empty signature"),
        pytest.param("a" * 32 + "+" + "b" * 10, "neither a JWT nor", id="plus in the token"),
        pytest.param("a.b.c.d", "neither a JWT nor", id="four parts"),
        pytest.param("a" * 32 + "~", "neither a JWT nor", id="tilde"),
    ],
)
def test_a_malformed_token_is_refused_before_any_lookup(api, frontend, db, token, reason):
    client = api()

    response = client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(token))

    body = assert_problem(response, 401)
    assert reason in body["detail"]
    assert "session token" in body["detail"]
    assert frontend.lookups == 0
    assert task_count(db) == 0


def test_session_tokens_need_better_auth_url():
    with pytest.raises(
        ValidationError, match="BETTER_AUTH_SESSION_TOKENS=true needs BETTER_AUTH_URL"
    ):
        settings_for_test(better_auth_session_tokens=True)


def test_the_run_command_explains_that_session_tokens_need_better_auth_url(monkeypatch, capsys):
    monkeypatch.setenv("BETTER_AUTH_SESSION_TOKENS", "true")
    monkeypatch.chdir(Path(__file__).parent)  # no .env of the developer's

    assert main(["serve"]) == 2

    assert "BETTER_AUTH_SESSION_TOKENS=true needs BETTER_AUTH_URL" in capsys.readouterr().err


def test_session_tokens_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("BETTER_AUTH_URL", "https://app.example.com/")
    monkeypatch.setenv("BETTER_AUTH_SESSION_TOKENS", "true")
    monkeypatch.setenv("BETTER_AUTH_SESSION_CACHE_SECONDS", "45")

    settings = settings_for_test()

    assert settings.session_lookup_url == "https://app.example.com/api/auth/get-session"
    assert settings.better_auth_session_cache_seconds == 45


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("better_auth_session_cache_seconds", -1),
        ("better_auth_session_cache_seconds", 301),
        ("better_auth_session_refused_seconds", -1),
        ("better_auth_session_cache_entries", 0),
        ("better_auth_session_lookups_per_second", 0),
        ("better_auth_session_lookup_burst", 0),
        ("better_auth_session_timeout_seconds", 0),
        ("better_auth_session_timeout_seconds", 31),
    ],
)
def test_session_settings_out_of_range_are_refused(name, value):
    with pytest.raises(ValidationError, match=name):
        settings_for_test(
            better_auth_url="https://app.example.com",
            better_auth_session_tokens=True,
            **{name: value},
        )


def test_no_session_token_is_ever_logged(api, frontend, settings):
    client = api(better_auth_session_timeout_seconds=0.3, better_auth_session_lookup_burst=4)
    stream = io.StringIO()  # after create_app, which configures logging itself
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=stream)
    try:
        valid, signed_out = frontend.sign_in("alice"), session_token()
        client.get("/api/alice/tasks", headers=bearer(valid))
        client.get("/api/alice/tasks", headers=bearer(signed_out))
        frontend.delay_seconds = 1
        slow = frontend.sign_in("bob")
        client.get("/api/bob/tasks", headers=bearer(slow))
        frontend.delay_seconds, frontend.status, frontend.raw_body = 0, 200, b"garbage"
        broken = frontend.sign_in("carol")
        client.get("/api/carol/tasks", headers=bearer(broken))
        frontend.raw_body = None
        for _ in range(3):
            client.get("/api/dave/tasks", headers=bearer(session_token()))  # over the budget
    finally:
        configure_logging(settings)

    logged = stream.getvalue()
    events = {json.loads(line)["event"] for line in logged.splitlines() if line.strip()}
    assert {"session.lookup_failed", "session.lookup_unreadable", "auth.unavailable"} <= events
    for token in (valid, signed_out, slow, broken):
        assert token not in logged
        assert token.partition(".")[0] not in logged


def test_the_openapi_document_describes_all_three_ways_to_sign(api):
    document = api().get("/openapi.json").json()

    (scheme,) = document["components"]["securitySchemes"].values()
    assert scheme["scheme"] == "bearer"
    for way in ("JWT plugin", "BETTER_AUTH_SECRET", "set-auth-token", "/api/auth/get-session"):
        assert way in scheme["description"]
