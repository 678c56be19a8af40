"""What serving imports: nothing it does not use (bench/startup.py measures the time)."""

import subprocess
import sys

from alembic.script import ScriptDirectory

from migrations import SCHEMA_REVISION, alembic_config
from tests.service import PROJECT_ROOT, clean_environment


def test_the_stated_schema_revision_is_alembics_head():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION


def test_serving_without_migrating_never_imports_alembic():
    # A fresh interpreter, as a worker starts: import main and build the app, as uvicorn does.
    script = (
        "import sys, main; main.create_app(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        # Building the app connects to nothing: no server need listen there.
        env=clean_environment(
            MIGRATE_ON_START="false", DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert loaded.stdout.strip().splitlines()[-1] == "[]", loaded.stderr
