"""Schemathesis against the app's own OpenAPI document: every operation, then chains of them.

The document is read from the app in-process (ASGI, no network), and every generated request is
sent the same way, to an app on the suite's database. Requests carry a
real token and the path's `user_id` is pinned to its subject, so they reach the handlers instead
of stopping at 401 or 403. Every default check runs on every answer: no 5xx; status code,
content type, headers and body as documented; invalid requests refused and valid ones accepted;
authentication not ignored. The seed is fixed, so a failure found once is found again on the next
run, the same way.

Schemathesis's own pytest integration (`schemathesis.pytest.from_fixture`) cannot run here: it
renames pytest's test items through an attribute pytest 9.2 no longer has. So each operation
gets a plain Hypothesis test over Schemathesis's strategy for it, and the stateful phase runs
Schemathesis's state machine; both are its documented Python API. The coverage phase (boundary
values of every parameter and field, each constraint broken in turn, undeclared methods) runs
through Schemathesis's own command line against the service served as in production.

The operations come from `features.registry` (tests/routes.py), so a new slice is fuzzed without
editing this file.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy.orm import Session

from main import create_app
from shared.config import Settings
from shared.db import app_state
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, DatabaseUnderTest
from tests.routes import ROUTES
from tests.service import PROJECT_ROOT, running_service

SEED = 20_260_505
USER_ID = "schemathesis-user"
OPERATION_IDS = list(dict.fromkeys(route.operation_id for route in ROUTES))
# Answers to a well-formed request that the state of things refuses, besides Schemathesis's
# defaults (2xx, 3xx, 401, 403, 404): 409, a create racing another with the same
# Idempotency-Key; 412, an If-Match naming a version the task no longer has; 422, a create
# reusing an Idempotency-Key with another body (documented on create only).
EXPECTED_STATUSES_OF_VALID_REQUESTS = ["2xx", "3xx", "401", "403", "404", "409", "412", "422"]
# Examples per operation, and scenarios of chained calls: enough to find a bug of one field or
# one step, while the whole file runs in well under a minute.
EXAMPLES_PER_OPERATION = 60
STATEFUL_SCENARIOS = 40
STEPS_PER_SCENARIO = 8

SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    stateful_step_count=STEPS_PER_SCENARIO,
    deadline=None,
    # Nothing remembered between runs: the seed alone decides what is sent, in CI as on a
    # laptop (Hypothesis's CI profile would otherwise derandomize and ignore it).
    database=None,
    derandomize=False,
    # Hypothesis's documented way to name every health check; its metaclass's __iter__ is not
    # annotated, so pyright takes the items for the metaclass (a typing gap of the library).
    suppress_health_check=list(hypothesis.HealthCheck),  # pyright: ignore[reportArgumentType]
)


@pytest.fixture(scope="module")
def api_schema(settings: Settings) -> Iterator[OpenApiSchema]:
    # An app of its own: Schemathesis serves it on its own event loop, while the suite's `app`
    # runs on the TestClient's, with database connections bound to that loop.
    app = create_app(settings)
    token = mint_token(settings, USER_ID, lifetime=timedelta(hours=1))
    config = schemathesis.Config.from_dict(
        {
            # Every request answers the document's HTTPBearer scheme with a real token (the
            # `ignored_auth` check sends some without it, to see them refused).
            "auth": {"openapi": {"HTTPBearer": {"bearer": token}}},
            "generation": {"mode": "all"},
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": EXPECTED_STATUSES_OF_VALID_REQUESTS,
                },
            },
        }
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    # Loading the schema started the app's lifespan; stop it while its database still exists.
    asgi.shutdown_lifespans()


@pytest.fixture
def api(api_schema: OpenApiSchema, db: Session) -> Iterator[OpenApiSchema]:
    """The schema, with empty tables before and after the test (the `db` fixture); the app
    forgets it wrote the users row, as the tables no longer hold it."""
    app_state(api_schema.app).known_users.clear()
    yield api_schema
    app_state(api_schema.app).known_users.clear()


def test_every_operation_of_the_document_is_tested(api: OpenApiSchema) -> None:
    operations = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())

    assert len(OPERATION_IDS) >= 8
    assert sorted(operation.definition.raw["operationId"] for operation in operations) == sorted(
        OPERATION_IDS
    )


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_operation_answers_valid_and_invalid_requests_as_documented(
    api: OpenApiSchema, operation_id: str
) -> None:
    operation = api.find_operation_by_id(operation_id)
    pinned = {"user_id": USER_ID} if "user_id" in operation.path_parameters else None
    valid = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned)
    invalid = operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=pinned)
    if operation_id == "list_tasks":
        # A list cursor is opaque: only one the `Link` header gave out is valid, which no
        # schema can say, so a made-up one is a 400 however it is drawn (as documented).
        # Valid requests page without one; invalid ones still send made-up cursors.
        valid = valid.filter(lambda case: "cursor" not in (case.query or {}))
    cases = valid | invalid

    @hypothesis.seed(SEED)
    @SETTINGS
    @hypothesis.given(case=cases)
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate()

    answers_as_documented()


def test_chains_of_operations_through_the_links_answer_as_documented(
    api: OpenApiSchema,
) -> None:
    class ChainsOfOperations(api.as_state_machine()):
        def before_call(self, case: schemathesis.Case) -> None:
            # A chain's first request names a user at random; the links carry it on from there.
            if case.path_parameters and "user_id" in case.path_parameters:
                case.path_parameters["user_id"] = USER_ID

    hypothesis.seed(SEED)(ChainsOfOperations).run(
        settings=hypothesis.settings(SETTINGS, max_examples=STATEFUL_SCENARIOS)
    )


def test_the_coverage_phase_finds_nothing_against_the_served_service(
    database: DatabaseUnderTest, settings: Settings, db: Session, tmp_path: Path
) -> None:
    """Schemathesis's coverage phase, every default check, against `python main.py` on the
    suite's database: boundary values of every parameter and body field (lengths at and past
    their limits, the largest ids, each enum value), each constraint broken in turn, missing
    and malformed headers and bodies, and every method a path does not have (a 405 whose
    `Allow` must list exactly the path's methods)."""
    token = mint_token(settings, USER_ID, lifetime=timedelta(hours=1))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
[auth.openapi.HTTPBearer]
bearer = {json.dumps(token)}

[parameters]
"path.user_id" = {json.dumps(USER_ID)}

[checks.positive_data_acceptance]
expected-statuses = {json.dumps(EXPECTED_STATUSES_OF_VALID_REQUESTS)}
"""
    )
    report = tmp_path / "report.json"
    with running_service(
        tmp_path,
        DATABASE_URL=database.url,
        BETTER_AUTH_SECRET=TEST_SECRET,
        MIGRATE_ON_START="false",
        LOG_LEVEL="WARNING",
    ) as service:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "--config-file",
                str(config),
                "run",
                f"{service.base_url}/openapi.json",
                "--phases=coverage",
                f"--seed={SEED}",
                "--workers=1",
                "--continue-on-failure",
                "--report=json",
                f"--report-json-path={report}",
            ],
            cwd=tmp_path,
            env={
                **service.environment,
                "PYTHONPATH": str(PROJECT_ROOT),
                "SCHEMATHESIS_HOOKS": "tests.security.schemathesis_hooks",
            },
            capture_output=True,
            text=True,
            timeout=600,
        )
        server_logs = service.logs()

    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    summary = json.loads(report.read_text())
    assert summary["phases"]["coverage"]["status"] == "success"
    assert summary["operations"]["tested"] == len(OPERATION_IDS), summary["operations"]
    assert summary["test_cases"]["generated"] > 20 * len(OPERATION_IDS)
    assert summary["failures"] == []
    assert summary["errors"] == []
    assert "Traceback" not in server_logs
