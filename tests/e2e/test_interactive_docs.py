"""/docs and /redoc in a real browser on a machine without internet access: Debian's chromium,
driven by Playwright (its own browser download cannot be reached, and is never used).

The page must load everything from the service, break none of its content security policy, list
every operation, and run "Try it out" with a token typed into "Authorize" to a 200.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    expect,
    sync_playwright,
)

from features.registry import TASK_ROUTERS
from tests.e2e.live_service import service_on_fresh_postgres, token_for
from tests.programs import required_program
from tests.service import Service

# What a root user on a headless CI machine needs, and nothing that reaches out by itself.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright runs this before any page script, outside the page's policy: it records what the
# browser refused under the policy.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""
TASK_OPERATIONS = {
    route.operation_id
    for router in TASK_ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)
}


@dataclass
class Browsing:
    service: Service
    page: Page
    outside: list[str]
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def assert_self_contained(self) -> None:
        """Nothing came from outside the service and the browser complained of nothing."""
        assert self.outside == []
        assert all(url.startswith(self.service.base_url) for url in self.requests), self.requests
        assert self.failures == []
        assert self.errors == []
        assert self.page.evaluate("window.__cspViolations") == []


@pytest.fixture(scope="module")
def chromium() -> Path:
    return required_program("chromium", "chromium")


@pytest.fixture
def browsing(postgres_admin, chromium, tmp_path) -> Iterator[tuple[Browsing, object]]:
    with (
        service_on_fresh_postgres(postgres_admin, tmp_path) as (service, db),
        sync_playwright() as playwright,
    ):
        # A new, empty profile each time: nothing cached, no state from an earlier run.
        context: BrowserContext = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            outside: list[str] = []

            def keep_inside(route: Route) -> None:
                # Nothing leaves the machine: a request elsewhere is refused, and recorded.
                if route.request.url.startswith(service.base_url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", keep_inside)
            page.add_init_script(RECORD_VIOLATIONS)
            browsing = Browsing(service, page, outside)

            def record_request(request: Request) -> None:
                if not request.url.startswith(("data:", "blob:")):
                    browsing.requests.append(request.url)

            def record_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    browsing.errors.append(message.text)

            def record_failure(response: Response) -> None:
                if response.status >= 400:
                    browsing.failures.append(f"{response.status} {response.url}")

            page.on("request", record_request)
            page.on("response", record_failure)
            page.on("console", record_console)
            page.on("pageerror", lambda error: browsing.errors.append(str(error)))
            yield browsing, db
        finally:
            context.close()


def test_swagger_ui_runs_try_it_out_on_list_tasks_with_a_typed_in_token(browsing, tmp_path):
    browsing, _ = browsing
    service, page = browsing.service, browsing.page
    token = token_for("alice")
    created = httpx2.post(
        f"{service.base_url}/api/alice/tasks",
        json={"title": "Seen through the docs"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201

    page.goto(f"{service.base_url}/docs", wait_until="load")
    browsing.assert_self_contained()
    operation_ids = page.locator(".opblock-tag-section .opblock-summary-operation-id")
    expect(operation_ids.first).to_be_visible()
    document = httpx2.get(f"{service.base_url}/openapi.json").json()
    documented = {
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    }
    assert sorted(operation_ids.all_inner_texts()) == sorted(documented)
    assert len(TASK_OPERATIONS) == 6
    assert documented >= TASK_OPERATIONS

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.get_by_label("auth-bearer-value").fill(token)
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close").click()

    operation = page.locator("#operations-tasks-list_tasks")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator('tr[data-param-name="user_id"] input').fill("alice")
    operation.get_by_role("button", name="Execute").click()

    answer = operation.locator(".live-responses-table tr.response")
    expect(answer.locator(".response-col_status")).to_have_text("200", timeout=30_000)
    expect(answer.locator(".response-col_description")).to_contain_text("Seen through the docs")
    page.screenshot(path=tmp_path / "docs.png", full_page=True)
    browsing.assert_self_contained()
    assert f"{service.base_url}/openapi.json" in browsing.requests
    assert any(url.startswith(f"{service.base_url}/api/alice/tasks") for url in browsing.requests)


def test_redoc_lists_every_operation_from_the_service_alone(browsing, tmp_path):
    browsing, _ = browsing
    page = browsing.page

    page.goto(f"{browsing.service.base_url}/redoc", wait_until="load")
    browsing.assert_self_contained()

    for name in ("List Tasks", "Create Task", "Update Task", "Delete Task"):
        expect(page.get_by_role("heading", name=name).first).to_be_visible(timeout=30_000)
    page.screenshot(path=tmp_path / "redoc.png")
    browsing.assert_self_contained()
