"""The OpenAPI document is a contract a frontend can build on: a TypeScript client generated from
the running service's /openapi.json (openapi-typescript + openapi-fetch, pinned in
tests/e2e/typescript_client/package-lock.json) type-checks with `tsc`, refuses at compile time
the calls the contract forbids (src/contract.ts), and walks through the API for real
(src/walkthrough.ts): create, list, toggle, update, delete.

The client is generated here, from the service under test, so no committed copy can drift.
Node.js and npm are required in CI (TASKS_TEST_REQUIRE_PROGRAMS=1); elsewhere their absence skips.
"""

import json
import os
import subprocess
from pathlib import Path

from shared.db import Task
from tests.e2e.live_service import service_on_fresh_postgres, token_for
from tests.programs import required_program
from tests.support import stored_task, stored_task_or_none, task_count

CLIENT_DIR = Path(__file__).parent / "typescript_client"


def _run(command: list[str], *, environment: dict[str, str] | None = None) -> str:
    finished = subprocess.run(
        command,
        cwd=CLIENT_DIR,
        env={**os.environ, **(environment or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, (command, finished.stdout[-3000:], finished.stderr[-3000:])
    return finished.stdout


def test_the_generated_client_compiles_and_walks_through_the_api(postgres_admin, tmp_path):
    node = str(required_program("node", "nodejs"))
    npm = str(required_program("npm", "npm"))
    if not (CLIENT_DIR / "node_modules" / "openapi-typescript").is_dir():
        _run([npm, "ci", "--no-audit", "--no-fund"])

    with service_on_fresh_postgres(postgres_admin, tmp_path) as (service, db):
        # The README's two commands: generate from the running service, then type-check (and
        # emit the JavaScript node runs).
        generated = CLIENT_DIR / "src" / "generated" / "api.d.ts"
        generated.unlink(missing_ok=True)
        openapi_url = f"{service.base_url}/openapi.json"
        _run([npm, "run", "generate"], environment={"OPENAPI_URL": openapi_url})
        assert '"/api/{user_id}/tasks/{task_id}/complete"' in generated.read_text()
        _run([npm, "run", "build"])

        output = _run(
            [node, "dist/walkthrough.js"],
            environment={
                "TASKS_API_URL": service.base_url,
                "TASKS_API_TOKEN": token_for("alice"),
                "TASKS_API_USER_ID": "alice",
            },
        )

        walked = json.loads(output.strip().splitlines()[-1])
        kept = stored_task(db, walked["kept"]["id"])
        assert isinstance(kept, Task)
        assert kept.user_id == "alice"
        assert kept.title == "Rewritten by the typed client"
        assert kept.description is None
        assert kept.completed is True
        assert walked["kept"]["completed"] is True
        assert stored_task_or_none(db, walked["deleted"]) is None
        assert task_count(db) == 1
        assert walked["totalCount"] == 1
        assert walked["notFoundDetail"]
