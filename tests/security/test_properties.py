"""Property tests: whatever text, id or query a client sends, the answer is never a 5xx, and
what is stored is exactly what was accepted.

Hypothesis runs derandomized, without its example database, so a run (and a failure) repeats
exactly. The fixtures' tables are shared by all examples of one test, so each example compares
the database with what it was just before that example.
"""

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.factories import TaskFactory
from tests.security.conftest import task_columns
from tests.support import assert_problem, stored_task, task_count

LIST = "/api/alice/tasks"

properties = hypothesis_settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Every code point: NUL, controls, lone surrogates, private use, astral planes.
ANY_CHARACTER = st.characters(exclude_categories=())
SHORT_TEXT_FOR_NAMES = st.text(ANY_CHARACTER, max_size=12)
ANY_TEXT = st.one_of(
    st.text(ANY_CHARACTER),
    st.text(st.characters(), max_size=20),
    # Around the title's 200 and the description's 1,000 characters.
    st.text(ANY_CHARACTER, min_size=190, max_size=1100),
    # Far past the limits and past 64 KiB once escaped, cheaply: one character repeated.
    st.builds(lambda character, count: character * count, ANY_CHARACTER, st.integers(0, 40_000)),
)


def _json(body: object) -> bytes:
    # ensure_ascii writes a lone surrogate as \\udXXX, as a careless client would send it.
    return json.dumps(body).encode()


def _path_segment(text: str) -> str:
    # Every byte percent-encoded, dots included, so the client normalizes nothing away.
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass"))


def _assert_refused(response, statuses=(400, 413)) -> dict:
    assert response.status_code in statuses, response.text
    return assert_problem(response, response.status_code)


@pytest.fixture
def alice(auth_headers) -> dict[str, str]:
    return {**auth_headers("alice"), "Content-Type": "application/json"}


# Made once per test, not per example: every example of a test works on the same rows.
@pytest.fixture
def alices_task(db):
    return TaskFactory(owner__id="alice", title="a task")


@pytest.fixture
def bobs_task(db):
    # There to be hit: an id or a search that reaches it must still not show it to Alice.
    return TaskFactory(owner__id="bob", title="a task")


@properties
@given(title=ANY_TEXT, description=st.one_of(st.none(), ANY_TEXT))
def test_any_text_on_create_is_stored_exactly_or_refused_storing_nothing(
    client, db, alice, title, description
):
    before = task_count(db)

    response = client.post(
        LIST, content=_json({"title": title, "description": description}), headers=alice
    )

    event(f"status {response.status_code}")
    if response.status_code == 201:
        task = stored_task(db, response.json()["id"])
        assert (task.title, task.description) == (title, description)
        assert (response.json()["title"], response.json()["description"]) == (title, description)
    else:
        _assert_refused(response)
        assert task_count(db) == before


@properties
@given(title=ANY_TEXT, description=st.one_of(st.none(), ANY_TEXT))
def test_any_text_on_update_is_stored_exactly_or_refused_changing_nothing(
    client, db, alice, alices_task, title, description
):
    task_id = alices_task.id
    before = task_columns(db, task_id)
    assert before is not None

    response = client.put(
        f"{LIST}/{task_id}",
        content=_json({"title": title, "description": description}),
        headers=alice,
    )

    event(f"status {response.status_code}")
    if response.status_code == 200:
        stored = stored_task(db, task_id)
        assert (stored.title, stored.description) == (title, description)
        assert stored.version - 1 == before["version"]
    else:
        _assert_refused(response)
        assert task_columns(db, task_id) == before


SERVER_SET = ("id", "user_id", "created_at", "updated_at")
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | SHORT_TEXT_FOR_NAMES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(SHORT_TEXT_FOR_NAMES, children, max_size=3)
    ),
    max_leaves=5,
)
# Field names a frontend sends (its own extras, the server's fields, hidden columns), and any
# name that is valid Unicode: a refused field is named in the answer, and a name holding a lone
# surrogate cannot be written back as UTF-8, so it has a test of its own (below).
EXTRA_NAMES = st.one_of(
    st.sampled_from([*SERVER_SET, "priority", "due_date", "version", "tags", ""]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
).filter(lambda name: name not in {"title", "description", "completed"})


@properties
@given(
    extras=st.dictionaries(
        EXTRA_NAMES, st.one_of(st.none(), ANY_JSON, st.sampled_from([1, "x"])), max_size=4
    )
)
def test_extra_fields_are_ignored_when_nothing_is_lost_and_refused_by_name_otherwise(
    client, db, alice, extras
):
    before = task_count(db)
    body = {"title": "mine", **extras}
    refused = {
        name for name, value in extras.items() if name not in SERVER_SET and value is not None
    }

    response = client.post(LIST, content=_json(body), headers=alice)

    event(f"status {response.status_code}")
    if refused:
        problem = assert_problem(response, 400)
        assert {error["field"] for error in problem["errors"]} == refused, problem
        assert {error["type"] for error in problem["errors"]} == {"extra_forbidden"}
        assert task_count(db) == before
    else:
        assert response.status_code == 201, response.text
        task = stored_task(db, response.json()["id"])
        assert (task.user_id, task.title, task.description, task.completed) == (
            "alice",
            "mine",
            None,
            False,
        )
        assert task_count(db) == before + 1


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("\ud800", id="lone high surrogate"),
        pytest.param("\udfff", id="lone low surrogate"),
        pytest.param("due\ud800date", id="surrogate inside a name"),
    ],
)
def test_an_extra_field_whose_name_is_not_valid_unicode_is_refused_saying_why(
    client, db, alice, name
):
    response = client.post(LIST, content=_json({"title": "mine", name: 1}), headers=alice)

    problem = assert_problem(response, 400)
    # The name cannot be echoed as UTF-8, so the error names no field but says what is wrong.
    assert problem["errors"] == [
        {
            "location": "body",
            "field": None,
            "message": "must be a valid string, unable to parse raw data as a unicode string",
            "type": "string_unicode",
        }
    ], problem
    assert "unicode" in problem["detail"]
    assert task_count(db) == 0


TASK_ROUTES = [
    ("GET", "/{task}"),
    ("PUT", "/{task}"),
    ("PATCH", "/{task}/complete"),
    ("DELETE", "/{task}"),
]


@properties
@given(
    task_id=st.one_of(
        st.integers().map(str),
        st.text(st.characters(exclude_categories=(), exclude_characters="/"), min_size=1),
    )
)
def test_any_task_id_is_a_400_or_a_404_and_never_reaches_another_persons_task(
    client, db, alice, bobs_task, task_id
):
    bob_before = task_columns(db, bobs_task.id)
    segment = _path_segment(task_id)

    for method, suffix in TASK_ROUTES:
        response = client.request(
            method,
            LIST + suffix.format(task=segment),
            content=_json({"title": "x"}) if method == "PUT" else None,
            headers=alice,
        )

        event(f"status {response.status_code}")
        _assert_refused(response, (400, 404))
    assert task_columns(db, bobs_task.id) == bob_before
    assert task_count(db) == 1


# Short of ANY_TEXT's 40,000 characters: the client refuses a URL over 64 KiB before sending it.
ANY_QUERY_TEXT = st.one_of(
    st.text(ANY_CHARACTER),
    st.text(ANY_CHARACTER, min_size=190, max_size=600),
    st.builds(lambda character, count: character * count, ANY_CHARACTER, st.integers(0, 1100)),
)


def _one_of_or_any(*valid: str) -> st.SearchStrategy[str]:
    # Half valid values: with seven parameters, mostly invalid ones would rarely give a 200.
    return st.booleans().flatmap(
        lambda valid_value: st.sampled_from(valid) if valid_value else ANY_QUERY_TEXT
    )


# Cursors shaped like the list's own (base64 of a JSON object), holding anything at all, and
# short enough to fit in a URL.
SHORT_TEXT = st.text(ANY_CHARACTER, max_size=20)
CRAFTED_CURSORS = st.fixed_dictionaries(
    {
        "k": st.sampled_from(["created", "updated", "title"]) | SHORT_TEXT,
        "o": st.sampled_from(["asc", "desc"]) | SHORT_TEXT,
        "v": st.one_of(
            st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat),
            SHORT_TEXT,
            st.integers(),
            st.floats(),
            st.none(),
            st.lists(st.integers(), max_size=2),
        ),
        "id": st.one_of(st.integers(), st.booleans(), st.floats(), SHORT_TEXT),
        "s": st.sampled_from(["after", "before"]) | SHORT_TEXT,
    },
).map(lambda data: base64.urlsafe_b64encode(_json(data)).rstrip(b"=").decode())

LIST_PARAMETERS = {
    "status": _one_of_or_any("all", "pending", "completed"),
    "sort": _one_of_or_any("created", "updated", "title"),
    "order": _one_of_or_any("asc", "desc"),
    "q": _one_of_or_any("task", "%", "_", "\\"),
    "limit": st.one_of(_one_of_or_any("1", "2", "500"), st.integers().map(str)),
    "offset": st.one_of(_one_of_or_any("0", "1", "2"), st.integers().map(str)),
    "cursor": st.booleans().flatmap(lambda crafted: CRAFTED_CURSORS if crafted else ANY_QUERY_TEXT),
}


@properties
@given(parameters=st.fixed_dictionaries({}, optional=LIST_PARAMETERS))
def test_any_list_query_is_a_200_or_a_400_naming_the_parameter(
    client, db, alice, alices_task, bobs_task, parameters
):
    query = "&".join(
        f"{_path_segment(name)}={_path_segment(value)}" for name, value in parameters.items()
    )

    response = client.get(f"{LIST}?{query}", headers=alice)

    event(f"status {response.status_code}")
    if response.status_code == 200:
        assert {task["user_id"] for task in response.json()} <= {"alice"}
    else:
        problem = _assert_refused(response, (400,))
        if "errors" in problem:
            named = {error["field"] for error in problem["errors"]}
            assert {error["location"] for error in problem["errors"]} == {"query"}
        else:
            named = {name for name in parameters if name in problem["detail"]}
        assert named, problem
        assert named <= set(parameters), problem
