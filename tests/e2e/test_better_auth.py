"""End to end with the real thing: tokens from the `better-auth` npm package, obtained the way a
Next.js frontend obtains them, sent to this API configured with nothing but BETTER_AUTH_URL (and
BETTER_AUTH_SESSION_TOKENS for the bearer plugin's session tokens).

Needs Node.js; the package is installed from tests/e2e/better_auth/package-lock.json (`.ci/run`
does it; so does this module when node_modules is missing). Without Node the tests skip, unless
TASKS_TEST_REQUIRE_BETTER_AUTH=1 (set by CI) makes that a failure.
"""

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx2
import jwt
import pytest
from fastapi.testclient import TestClient

from main import create_app
from tests.support import (
    assert_problem,
    stored_task,
    stored_task_or_none,
    stored_user,
    stored_user_or_none,
)

FRONTEND_DIR = Path(__file__).parent / "better_auth"
REQUIRE_BETTER_AUTH = os.environ.get("TASKS_TEST_REQUIRE_BETTER_AUTH") == "1"


def _unavailable(reason: str) -> NoReturn:
    if REQUIRE_BETTER_AUTH:
        pytest.fail(f"TASKS_TEST_REQUIRE_BETTER_AUTH=1 but {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class BetterAuthFrontends:
    frontend: str  # the instance whose tokens the API accepts
    stranger: str  # another instance, with keys of its own


@pytest.fixture(scope="session")
def better_auth() -> Iterator[BetterAuthFrontends]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("Node.js and npm are needed to run the real better-auth package")
    if not (FRONTEND_DIR / "node_modules" / "better-auth").is_dir():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=FRONTEND_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if installed.returncode != 0:
            _unavailable(f"npm ci failed: {installed.stderr[-2000:]}")
    process = subprocess.Popen(
        [node, "frontend.mjs"],
        cwd=FRONTEND_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BETTER_AUTH_TELEMETRY": "0"},
    )
    # Popen made all three pipes (PIPE above); its type cannot say so.
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    first_line = process.stdout.readline()
    if not first_line:
        process.kill()
        pytest.fail(f"the Better Auth frontend did not start: {process.stderr.read()[-2000:]}")
    urls = json.loads(first_line)
    try:
        yield BetterAuthFrontends(urls["frontend"], urls["stranger"])
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


PASSWORD = "correct-horse-battery-staple"
SESSION_CACHE_SECONDS = 2


def _sign_up(browser: httpx2.Client, name: str) -> tuple[str, str]:
    """Sign a new person up as the frontend's sign-up form does; their id and email."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    signed_up = browser.post(
        "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert signed_up.status_code == 200, signed_up.text
    return signed_up.json()["user"]["id"], email


def _browser(base_url: str) -> httpx2.Client:
    return httpx2.Client(base_url=base_url, headers={"Origin": base_url})


def _signed_up(base_url: str, name: str) -> tuple[str, str]:
    """A new person's id and their JWT from the JWT plugin."""
    with _browser(base_url) as browser:
        user_id, _ = _sign_up(browser, name)
        # The session cookie from sign-up is what /api/auth/token authenticates.
        token = browser.get("/api/auth/token")
        assert token.status_code == 200, token.text
        return user_id, token.json()["token"]


def _new_person(base_url: str, name: str) -> tuple[str, str]:
    """A new person's id and email, signed up in a browser that then goes away."""
    with _browser(base_url) as browser:
        return _sign_up(browser, name)


def _signed_in(base_url: str, email: str) -> tuple[str, str]:
    """Sign in as a frontend using the bearer plugin does: the session token comes in the
    `set-auth-token` header (the body's `token` is the same token, without its signature)."""
    signed_in = httpx2.post(
        f"{base_url}/api/auth/sign-in/email",
        json={"email": email, "password": PASSWORD},
        headers={"Origin": base_url},
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.headers["set-auth-token"]
    assert token.partition(".")[0] == signed_in.json()["token"]
    return token, signed_in.json()["token"]


@pytest.fixture
def api(settings, better_auth, db) -> Iterator[TestClient]:
    """This API as production would run it against that frontend: BETTER_AUTH_URL and no secret,
    session tokens accepted too (kept for a short while, so that sign-out is seen quickly)."""
    frontend_settings = settings.model_copy(
        update={
            "better_auth_secret": None,
            "better_auth_url": better_auth.frontend,
            "better_auth_session_tokens": True,
            "better_auth_session_cache_seconds": SESSION_CACHE_SECONDS,
        }
    )
    with TestClient(create_app(frontend_settings)) as client:
        yield client


def test_a_real_better_auth_token_works_for_every_operation(api, better_auth, db):
    user_id, token = _signed_up(better_auth.frontend, "Alice")
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    headers = {"Authorization": f"Bearer {token}"}
    tasks = f"/api/{user_id}/tasks"

    created = api.post(tasks, json={"title": "Signed in for real"}, headers=headers)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    user = stored_user(db, user_id)
    assert user.name == "Alice"
    assert user.email is not None
    assert user.email.startswith("alice-")

    listed = api.get(tasks, headers=headers)
    assert [task["id"] for task in listed.json()] == [task_id]

    toggled = api.patch(f"{tasks}/{task_id}/complete", headers=headers)
    assert toggled.json()["completed"] is True
    stored = stored_task(db, task_id)
    assert stored.completed is True

    deleted = api.delete(f"{tasks}/{task_id}", headers=headers)
    assert deleted.status_code == 204
    assert stored_task_or_none(db, task_id) is None


def test_a_real_token_on_another_persons_path_is_403(api, better_auth, db):
    _, alices_token = _signed_up(better_auth.frontend, "Alice")
    bob_id, _ = _signed_up(better_auth.frontend, "Bob")

    response = api.post(
        f"/api/{bob_id}/tasks",
        json={"title": "Not mine"},
        headers={"Authorization": f"Bearer {alices_token}"},
    )

    assert_problem(response, 403)
    assert stored_user_or_none(db, bob_id) is None


def test_a_token_from_another_better_auth_instance_is_401(api, better_auth, db):
    stranger_id, stranger_token = _signed_up(better_auth.stranger, "Mallory")

    response = api.get(
        f"/api/{stranger_id}/tasks", headers={"Authorization": f"Bearer {stranger_token}"}
    )

    assert_problem(response, 401)


def test_an_expired_better_auth_token_is_401(api, better_auth):
    user_id, _ = _signed_up(better_auth.frontend, "Alice")
    expired = httpx2.post(f"{better_auth.frontend}/test/expired-token", json={"sub": user_id})

    response = api.get(
        f"/api/{user_id}/tasks", headers={"Authorization": f"Bearer {expired.json()['token']}"}
    )

    body = assert_problem(response, 401)
    assert "expired" in body["detail"]


def test_a_real_session_token_works_for_every_operation(api, better_auth, db):
    user_id, email = _new_person(better_auth.frontend, "Carol")
    token, _ = _signed_in(better_auth.frontend, email)
    headers = {"Authorization": f"Bearer {token}"}
    tasks = f"/api/{user_id}/tasks"

    created = api.post(tasks, json={"title": "Signed in by session"}, headers=headers)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    stored = stored_task(db, task_id)
    assert stored.user_id == user_id
    user = stored_user(db, user_id)
    assert (user.email, user.name) == (email, "Carol")

    listed = api.get(tasks, headers=headers)
    assert listed.status_code == 200
    assert [task["id"] for task in listed.json()] == [task_id]

    toggled = api.patch(f"{tasks}/{task_id}/complete", headers=headers)
    assert toggled.status_code == 200
    assert toggled.json()["completed"] is True
    stored = stored_task(db, task_id)
    assert stored.completed is True

    deleted = api.delete(f"{tasks}/{task_id}", headers=headers)
    assert deleted.status_code == 204
    assert stored_task_or_none(db, task_id) is None


def test_the_bare_session_token_of_the_sign_in_body_works_too(api, better_auth, db):
    user_id, email = _new_person(better_auth.frontend, "Carol")
    _, bare = _signed_in(better_auth.frontend, email)

    response = api.get(f"/api/{user_id}/tasks", headers={"Authorization": f"Bearer {bare}"})

    assert response.status_code == 200, response.text


def test_a_real_session_token_on_another_persons_path_is_403(api, better_auth, db):
    _, carols_email = _new_person(better_auth.frontend, "Carol")
    dave_id, _ = _new_person(better_auth.frontend, "Dave")
    token, _ = _signed_in(better_auth.frontend, carols_email)

    response = api.post(
        f"/api/{dave_id}/tasks",
        json={"title": "Not mine"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert_problem(response, 403)
    assert stored_user_or_none(db, dave_id) is None


def test_after_sign_out_a_session_token_is_401_within_the_cache_time(api, better_auth, db):
    user_id, email = _new_person(better_auth.frontend, "Carol")
    token, _ = _signed_in(better_auth.frontend, email)
    headers = {"Authorization": f"Bearer {token}"}
    tasks = f"/api/{user_id}/tasks"
    assert api.get(tasks, headers=headers).status_code == 200

    signed_out = httpx2.post(
        f"{better_auth.frontend}/api/auth/sign-out",
        headers={**headers, "Origin": better_auth.frontend},
    )
    assert signed_out.status_code == 200, signed_out.text
    # The frontend itself no longer knows the session...
    session = httpx2.get(f"{better_auth.frontend}/api/auth/get-session", headers=headers)
    assert session.json() is None
    # ...and this API stops accepting it once what it remembered has lapsed.
    time.sleep(SESSION_CACHE_SECONDS + 0.2)
    response = api.post(tasks, json={"title": "After sign-out"}, headers=headers)

    body = assert_problem(response, 401)
    assert "signed out" in body["detail"]
    assert stored_user_or_none(db, user_id) is None


def test_a_session_token_from_another_better_auth_instance_is_401(api, better_auth, db):
    stranger_id, email = _new_person(better_auth.stranger, "Mallory")
    token, _ = _signed_in(better_auth.stranger, email)

    response = api.post(
        f"/api/{stranger_id}/tasks",
        json={"title": "From elsewhere"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert_problem(response, 401)
    assert stored_user_or_none(db, stranger_id) is None
