"""Programs the topology and browser tests drive for real (PgBouncer, HAProxy, Chromium).

On a newcomer's laptop a missing program makes its tests skip with the package to install; in
CI (`TASKS_TEST_REQUIRE_PROGRAMS=1`, set by .ci/run, which installs them) it is a failure.
"""

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_PROGRAMS = os.environ.get("TASKS_TEST_REQUIRE_PROGRAMS") == "1"
# Debian puts daemons such as pgbouncer in /usr/sbin, which a bare PATH may lack.
_EXTRA_PATH = "/usr/sbin:/sbin:/usr/bin"


def required_program(name: str, debian_package: str) -> Path:
    """The path of `name`, or a skip (a failure in CI) naming the package that provides it."""
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{_EXTRA_PATH}")
    if found is not None:
        return Path(found)
    reason = f"{name} is not installed (Debian package: apt-get install {debian_package})"
    if REQUIRE_PROGRAMS:
        pytest.fail(f"TASKS_TEST_REQUIRE_PROGRAMS=1 but {reason}")
    pytest.skip(reason)
