"""OWASP API4 (resource consumption) and API8 (misconfiguration): bodies, encodings and ids that
no client should send get a 4xx problem, never a 500, and change nothing.

A chunked body is sent over a raw socket to a real uvicorn server, since the test client hands
the app the whole body at once and so cannot show the limit counting bytes as they arrive.

The tests of every route take the routes from `features.registry` and their bodies from the
OpenAPI document (tests/routes.py), so a new slice is covered without editing this file.
"""

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from main import create_app
from shared.db import app_state
from shared.edge import MAX_BODY_BYTES
from tests.factories import TaskFactory
from tests.routes import (
    TASK_ROUTES_WITH_A_BODY,
    TASK_ROUTES_WITH_A_TASK_ID,
    RequestBodies,
    Route,
)
from tests.security.conftest import task_columns
from tests.support import assert_problem, task_count, user_count

LIST = "/api/alice/tasks"


def json_body_of_size(size: int, title: str = "sized") -> bytes:
    """A valid create body of exactly `size` bytes: JSON allows any amount of whitespace."""
    start, end = json.dumps({"title": title})[:-1].encode(), b"}"
    return start + b" " * (size - len(start) - len(end)) + end


@dataclass(frozen=True)
class RealServer:
    app: FastAPI
    port: int


@pytest.fixture(scope="module")
def real_server(settings) -> Iterator[RealServer]:
    """The app served by uvicorn on loopback, in a thread, on the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.02)
    yield RealServer(app, port)
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def server(real_server, db) -> Iterator[RealServer]:
    yield real_server
    app_state(real_server.app).known_users.clear()


def send_chunked(port: int, path: str, headers: dict[str, str], chunks: list[bytes]):
    """POST a body in HTTP/1.1 chunks over a raw socket; the status and the parsed body."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    message = ("\r\n".join([*head, "Connection: close"]) + "\r\n\r\n").encode()
    for chunk in chunks:
        message += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    message += b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(message)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.getheader("content-type"), response.read()


def _chunks(body: bytes, size: int = 4096) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize(
    ("size", "status"),
    [
        pytest.param(MAX_BODY_BYTES, 201, id="exactly 64 KiB"),
        pytest.param(MAX_BODY_BYTES + 1, 413, id="one byte over"),
        pytest.param(10 * MAX_BODY_BYTES, 413, id="ten times over"),
    ],
)
def test_a_body_with_content_length_is_limited_to_64_kib(client, db, auth_headers, size, status):
    body = json_body_of_size(size)

    response = client.post(
        LIST, content=body, headers={**auth_headers("alice"), "Content-Type": "application/json"}
    )

    if status == 201:
        assert response.status_code == 201, response.text
        assert task_count(db) == 1
    else:
        assert_problem(response, 413)
        assert task_count(db) == 0
        assert user_count(db) == 0


def test_a_declared_length_over_64_kib_is_refused_before_the_body_is_read(client, db, auth_headers):
    # The body itself is small: only the declared length can be what is refused.
    response = client.post(
        LIST,
        content=b'{"title": "x"}',
        headers={
            **auth_headers("alice"),
            "Content-Type": "application/json",
            "Content-Length": str(MAX_BODY_BYTES + 1),
        },
    )

    assert_problem(response, 413)
    assert task_count(db) == 0


@pytest.mark.parametrize(
    ("size", "status"),
    [
        pytest.param(MAX_BODY_BYTES, 201, id="exactly 64 KiB"),
        pytest.param(MAX_BODY_BYTES + 1, 413, id="one byte over"),
        pytest.param(10 * MAX_BODY_BYTES, 413, id="ten times over"),
    ],
)
def test_a_body_without_content_length_is_counted_as_it_arrives(
    client, db, auth_headers, size, status
):
    body = json_body_of_size(size)

    response = client.post(
        LIST,
        content=iter(_chunks(body)),
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    if status == 201:
        assert response.status_code == 201, response.text
        assert task_count(db) == 1
    else:
        assert_problem(response, 413)
        assert task_count(db) == 0


@pytest.mark.parametrize(
    ("size", "status"),
    [
        pytest.param(MAX_BODY_BYTES, 201, id="exactly 64 KiB"),
        pytest.param(MAX_BODY_BYTES + 1, 413, id="one byte over"),
        pytest.param(4 * MAX_BODY_BYTES, 413, id="four times over"),
    ],
)
def test_a_chunked_body_on_a_real_server_is_limited_to_64_kib(
    server, db, auth_headers, size, status
):
    headers = {**auth_headers("alice"), "Content-Type": "application/json"}

    got, content_type, body = send_chunked(
        server.port, LIST, headers, _chunks(json_body_of_size(size))
    )

    assert got == status, body
    if status == 201:
        assert json.loads(body)["title"] == "sized"
        assert task_count(db) == 1
    else:
        assert content_type == "application/problem+json"
        assert json.loads(body)["status"] == 413
        assert task_count(db) == 0
        assert user_count(db) == 0


@pytest.mark.parametrize("content_length", ["abc", "-1", "1.5", "1e3", "0x10", "", "+5"])
def test_a_content_length_that_is_not_a_number_is_400(client, db, auth_headers, content_length):
    response = client.post(
        LIST,
        content=b'{"title": "x"}',
        headers={
            **auth_headers("alice"),
            "Content-Type": "application/json",
            "Content-Length": content_length,
        },
    )

    body = assert_problem(response, 400)
    assert "Content-Length" in body["detail"]
    assert task_count(db) == 0


INVALID_UTF8 = {
    "a stray continuation byte": b"\xff\xfe",
    "an overlong slash": b"\xc0\xaf",
    "an encoded surrogate": b"\xed\xa0\x80",
    "a truncated sequence": b"\xe2\x82",
}


def _with_invalid_utf8(bodies: RequestBodies, route: Route, invalid: bytes) -> bytes:
    """The route's valid body, with invalid UTF-8 in a field that would otherwise be read."""
    placeholder = "\u2603 not utf-8 \u2603"
    body = {**(bodies.valid(route) or {}), bodies.text_field(route): placeholder}
    return json.dumps(body, ensure_ascii=False).encode().replace(placeholder.encode(), invalid)


@pytest.fixture
def alices_task(db):
    return TaskFactory(owner__id="alice", title="as it was", version=3)


def _send(client, route: Route, task_id: int, content: bytes, headers: dict):
    return client.request(
        route.method, route.url(user_id="alice", task_id=task_id), content=content, headers=headers
    )


@pytest.mark.parametrize("route", TASK_ROUTES_WITH_A_BODY, ids=str)
@pytest.mark.parametrize("invalid", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_is_a_400_problem_and_changes_nothing(
    client, db, auth_headers, request_bodies, alices_task, route, invalid
):
    body = _with_invalid_utf8(request_bodies, route, invalid)
    before = task_columns(db, alices_task.id)
    headers = {**auth_headers("alice"), "Content-Type": "application/json"}

    response = _send(client, route, alices_task.id, body, headers)

    assert_problem(response, 400)
    assert task_columns(db, alices_task.id) == before
    assert task_count(db) == 1


@pytest.mark.parametrize("route", TASK_ROUTES_WITH_A_BODY, ids=str)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/octet-stream",
        None,
    ],
)
def test_a_body_that_is_not_sent_as_json_is_a_400_problem(
    client, db, auth_headers, request_bodies, alices_task, route, content_type
):
    before = task_columns(db, alices_task.id)
    headers = auth_headers("alice")
    if content_type is not None:
        headers["Content-Type"] = content_type
    valid_json = json.dumps(request_bodies.valid(route)).encode()

    response = _send(client, route, alices_task.id, valid_json, headers)

    body = assert_problem(response, 400)
    assert body["errors"][0]["location"] == "body"
    assert task_columns(db, alices_task.id) == before
    assert task_count(db) == 1


@pytest.mark.parametrize("route", TASK_ROUTES_WITH_A_BODY, ids=str)
@pytest.mark.parametrize(
    "body",
    [
        # Deeper than Python's recursion limit, as deep as 64 KiB allows.
        pytest.param(b"[" * 32_000 + b"]" * 32_000, id="32,000 nested arrays"),
        pytest.param(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, id="10,000 nested objects"),
        pytest.param(
            b'{"title": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", id="30,000 levels in a field"
        ),
        # Shallow enough to parse, and then refused for its shape.
        pytest.param(b"[" * 500 + b"]" * 500, id="500 nested arrays"),
    ],
)
def test_deeply_nested_json_is_a_400_problem_without_a_recursion_error(
    client, db, auth_headers, alices_task, caplog, route, body
):
    before = task_columns(db, alices_task.id)
    headers = {**auth_headers("alice"), "Content-Type": "application/json"}

    with caplog.at_level(logging.DEBUG):
        response = _send(client, route, alices_task.id, body, headers)

    assert_problem(response, 400)
    assert "request.completed" in caplog.text  # the app's log is really being read
    assert "RecursionError" not in caplog.text
    assert "Traceback" not in caplog.text
    assert task_columns(db, alices_task.id) == before


def test_nesting_deeper_than_64_kib_holds_is_refused_for_its_size(client, db, auth_headers):
    body = b"[" * 100_000 + b"]" * 100_000

    response = client.post(
        LIST, content=body, headers={**auth_headers("alice"), "Content-Type": "application/json"}
    )

    assert_problem(response, 413)
    assert task_count(db) == 0


@pytest.mark.parametrize("route", TASK_ROUTES_WITH_A_TASK_ID, ids=str)
@pytest.mark.parametrize(
    ("task_id", "status"),
    [
        pytest.param("0", 400, id="0"),
        pytest.param("-1", 400, id="-1"),
        pytest.param(str(2**31), 404, id="2^31"),
        pytest.param(str(2**63 - 1), 404, id="2^63-1"),
        pytest.param(str(2**63), 400, id="2^63"),
        pytest.param(str(10**20), 400, id="10^20"),
        pytest.param("abc", 400, id="abc"),
        pytest.param("1.5", 400, id="1.5"),
        pytest.param("1e3", 400, id="1e3"),
        pytest.param("0x10", 400, id="0x10"),
        pytest.param("%00", 400, id="NUL"),
        pytest.param("9" * 5000, 400, id="5000 digits"),
    ],
)
def test_an_impossible_task_id_is_a_400_and_an_absent_one_a_404(
    client, db, auth_headers, request_bodies, alices_task, route, task_id, status
):
    before = task_columns(db, alices_task.id)

    response = client.request(
        route.method,
        route.url(user_id="alice", task_id=task_id),
        json=request_bodies.valid(route),
        headers=auth_headers("alice"),
    )

    if status == 400:
        assert_problem(response, 400, invalid_fields={"task_id"})
    else:
        assert_problem(response, 404)
    assert task_columns(db, alices_task.id) == before
