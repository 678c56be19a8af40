"""The list's filters, orders, search and paging: each on its own, combined, and under change."""

import re
from datetime import timedelta

import pytest

from shared.db import utc_now
from tests.factories import TaskFactory, UserFactory, insert_tasks
from tests.support import assert_problem

LIST = "/api/alice/tasks"
# The contract: the default page, and the largest, hold a thousand tasks.
DEFAULT_PAGE = 1000


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()]


def _links(response) -> dict[str, str]:
    header = response.headers.get("link", "")
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


@pytest.fixture
def alice(db):
    return UserFactory(id="alice")


@pytest.fixture
def mixed_tasks(alice):
    """Three tasks with distinct creation, change and title orders, one of them completed."""
    now = utc_now()
    banana = TaskFactory(
        owner=alice,
        title="banana",
        created_at=now - timedelta(hours=3),
        updated_at=now,
        completed=True,
    )
    apple = TaskFactory(owner=alice, title="Apple", created_at=now - timedelta(hours=2))
    cherry = TaskFactory(owner=alice, title="cherry", created_at=now - timedelta(hours=1))
    return apple, banana, cherry


def test_defaults_are_everything_newest_first_with_the_total(client, auth_headers, mixed_tasks):
    apple, banana, cherry = mixed_tasks

    response = client.get(LIST, headers=auth_headers("alice"))

    assert _ids(response) == [cherry.id, apple.id, banana.id]
    assert response.headers["x-total-count"] == "3"
    assert "link" not in response.headers


@pytest.mark.parametrize(
    ("status", "expected", "total"),
    [
        ("all", ["cherry", "apple", "banana"], 3),
        ("pending", ["cherry", "apple"], 2),
        ("completed", ["banana"], 1),
    ],
)
def test_status_filters(client, auth_headers, mixed_tasks, status, expected, total):
    response = client.get(LIST, params={"status": status}, headers=auth_headers("alice"))

    assert [task["title"].lower() for task in response.json()] == expected
    assert response.headers["x-total-count"] == str(total)


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("created", "asc", ["banana", "apple", "cherry"]),
        ("created", "desc", ["cherry", "apple", "banana"]),
        ("updated", "desc", ["banana", "cherry", "apple"]),
        ("updated", "asc", ["apple", "cherry", "banana"]),
    ],
)
def test_sort_orders(client, auth_headers, mixed_tasks, sort, order, expected):
    response = client.get(
        LIST, params={"sort": sort, "order": order}, headers=auth_headers("alice")
    )

    assert [task["title"].lower() for task in response.json()] == expected


def test_title_order_is_the_databases_and_ties_break_by_id(client, auth_headers, alice):
    same = [TaskFactory(owner=alice, title="same") for _ in range(3)]
    other = TaskFactory(owner=alice, title="zzz")

    ascending = client.get(
        LIST, params={"sort": "title", "order": "asc"}, headers=auth_headers("alice")
    )
    descending = client.get(
        LIST, params={"sort": "title", "order": "desc"}, headers=auth_headers("alice")
    )

    assert _ids(ascending) == [task.id for task in same] + [other.id]
    assert _ids(descending) == [other.id] + [task.id for task in reversed(same)]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("APPLE", {"Apple pie"}),
        ("pie", {"Apple pie", "Cherry pie"}),
        ("ÉTÉ", {"Résumé d'été"}),
        ("in the notes", {"Cherry pie"}),
        ("100%", {"100% done"}),
        ("_", {"snake_case"}),
        ("%", {"100% done"}),
        ("nothing like this", set()),
    ],
)
def test_search_is_case_insensitive_in_title_and_description_and_literal(
    client, auth_headers, alice, search, expected
):
    TaskFactory(owner=alice, title="Apple pie", description=None)
    TaskFactory(owner=alice, title="Cherry pie", description="It is in the notes")
    TaskFactory(owner=alice, title="Résumé d'été", description=None)
    TaskFactory(owner=alice, title="100% done", description="x")
    TaskFactory(owner=alice, title="snake_case", description=None)
    TaskFactory(owner=alice, title="snakeXcase 100 percent", description=None)

    response = client.get(LIST, params={"q": search}, headers=auth_headers("alice"))

    assert {task["title"] for task in response.json()} == expected
    assert response.headers["x-total-count"] == str(len(expected))


def test_options_combine(client, auth_headers, alice):
    # No generated descriptions: a random "piece" would match the search.
    for title in ("pie one", "pie two", "pie three", "cake"):
        TaskFactory(owner=alice, title=title, description=None, completed=False)
    TaskFactory(owner=alice, title="pie done", description=None, completed=True)

    response = client.get(
        LIST,
        params={"status": "pending", "q": "PIE", "sort": "title", "order": "asc", "limit": 2},
        headers=auth_headers("alice"),
    )

    assert [task["title"] for task in response.json()] == ["pie one", "pie three"]
    assert response.headers["x-total-count"] == "3"
    assert set(_links(response)) == {"next"}


def test_limit_and_offset(client, auth_headers, alice):
    now = utc_now()
    tasks = [TaskFactory(owner=alice, created_at=now - timedelta(minutes=n)) for n in range(5)]

    response = client.get(LIST, params={"limit": 2, "offset": 2}, headers=auth_headers("alice"))

    assert _ids(response) == [tasks[2].id, tasks[3].id]
    assert response.headers["x-total-count"] == "5"
    assert set(_links(response)) == {"next", "prev"}


def test_past_the_end_is_an_empty_page_that_still_counts(client, auth_headers, alice):
    TaskFactory.create_batch(3, owner=alice)

    response = client.get(LIST, params={"offset": 10}, headers=auth_headers("alice"))

    assert response.json() == []
    assert response.headers["x-total-count"] == "3"


def test_the_default_page_holds_a_thousand_tasks(client, db, auth_headers, alice):
    insert_tasks(db, alice, DEFAULT_PAGE + 1)

    response = client.get(LIST, headers=auth_headers("alice"))

    assert len(_ids(response)) == DEFAULT_PAGE
    assert response.headers["x-total-count"] == "1001"
    following = client.get(_links(response)["next"], headers=auth_headers("alice"))
    assert [task["title"] for task in following.json()] == ["task 1000"]


def test_a_thousand_is_also_the_largest_page(client, db, auth_headers, alice):
    insert_tasks(db, alice, 3)

    largest = client.get(LIST, params={"limit": 1000}, headers=auth_headers("alice"))
    too_large = client.get(LIST, params={"limit": 1001}, headers=auth_headers("alice"))

    assert len(_ids(largest)) == 3
    problem = assert_problem(too_large, 400, invalid_fields={"limit"})
    assert problem["detail"] == "limit: must be at most 1000"


def _follow(client, headers, url, relation="next") -> list[list[int]]:
    pages = []
    while url:
        response = client.get(url, headers=headers)
        pages.append(_ids(response))
        url = _links(response).get(relation)
    return pages


@pytest.mark.parametrize("sort", ["created", "updated", "title"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_following_next_visits_every_task_once_in_order(client, auth_headers, alice, sort, order):
    same_moment = utc_now()
    TaskFactory.create_batch(4, owner=alice, created_at=same_moment, title="tie")
    TaskFactory.create_batch(7, owner=alice)
    full = _ids(
        client.get(LIST, params={"sort": sort, "order": order}, headers=auth_headers("alice"))
    )

    pages = _follow(client, auth_headers("alice"), f"{LIST}?sort={sort}&order={order}&limit=3")

    assert [task for page in pages for task in page] == full
    assert [len(page) for page in pages] == [3, 3, 3, 2]


def test_following_prev_walks_back_through_the_same_pages(client, auth_headers, alice):
    TaskFactory.create_batch(7, owner=alice)
    forward = _follow(client, auth_headers("alice"), f"{LIST}?limit=3")
    last_page = client.get(f"{LIST}?limit=3&offset=6", headers=auth_headers("alice"))

    backward = _follow(client, auth_headers("alice"), _links(last_page)["prev"], relation="prev")

    assert backward == list(reversed(forward[:-1]))


def test_paging_while_tasks_are_added_neither_repeats_nor_skips(client, auth_headers, alice):
    headers = auth_headers("alice")
    before = {task.id for task in TaskFactory.create_batch(9, owner=alice)}
    seen: list[int] = []
    url = f"{LIST}?limit=3"
    while url:
        response = client.get(url, headers=headers)
        seen.extend(_ids(response))
        # Someone adds a task on another device between every two pages.
        client.post(LIST, json={"title": "added meanwhile"}, headers=headers)
        url = _links(response).get("next")

    assert len(seen) == len(set(seen))
    assert before <= set(seen)


def test_links_keep_the_other_parameters(client, auth_headers, alice):
    TaskFactory.create_batch(3, owner=alice, completed=True)

    response = client.get(
        LIST, params={"status": "completed", "limit": 1}, headers=auth_headers("alice")
    )

    next_url = _links(response)["next"]
    assert next_url.startswith("/api/alice/tasks?")
    assert "status=completed" in next_url
    assert "limit=1" in next_url


def test_the_headers_are_readable_by_the_browser(client, auth_headers, alice):
    response = client.get(
        LIST, headers={**auth_headers("alice"), "Origin": "http://localhost:3000"}
    )

    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-total-count", "link", "etag", "location"} <= exposed


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"status": "done"}, "status"),
        ({"sort": "priority"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "nul\x00"}, "q"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, auth_headers, alice, params, parameter):
    response = client.get(LIST, params=params, headers=auth_headers("alice"))

    body = assert_problem(response, 400, invalid_fields={parameter})
    assert body["errors"][0]["location"] == "query"


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "eyJ4IjogMX0", "", "e30"],
)
def test_a_cursor_that_was_not_given_out_is_400(client, auth_headers, alice, cursor):
    response = client.get(LIST, params={"cursor": cursor}, headers=auth_headers("alice"))

    assert_problem(response, 400)


def test_a_cursor_cannot_change_the_order_or_come_with_an_offset(client, auth_headers, alice):
    TaskFactory.create_batch(3, owner=alice)
    first = client.get(LIST, params={"limit": 1}, headers=auth_headers("alice"))
    found = re.search(r"cursor=([^&>]+)", _links(first)["next"])
    assert found is not None
    cursor = found.group(1)

    reordered = client.get(
        LIST, params={"cursor": cursor, "sort": "title"}, headers=auth_headers("alice")
    )
    with_offset = client.get(
        LIST, params={"cursor": cursor, "offset": 1}, headers=auth_headers("alice")
    )

    assert_problem(reordered, 400)
    assert_problem(with_offset, 400)
