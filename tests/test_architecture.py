"""The slice rules, checked on the source: each test first proves it found something to check."""

import ast
from pathlib import Path

from features.registry import PUBLIC_ROUTERS, TASK_ROUTERS

ROOT = Path(__file__).resolve().parents[1]
SLICE_GROUPS = ROOT / "features"
ALLOWED_SHARED_MODULES = {"shared.auth", "shared.db", "shared.drain", "shared.logging"}


def _slices() -> list[Path]:
    return sorted(
        path
        for group in SLICE_GROUPS.iterdir()
        if group.is_dir() and not group.name.startswith("__")
        for path in group.iterdir()
        if path.is_dir() and not path.name.startswith("__")
    )


def _imported_modules(source: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_there_are_six_task_slices():
    task_slices = {path.name for path in _slices() if path.parent.name == "tasks"}

    assert task_slices == {
        "list_tasks",
        "create_task",
        "get_task",
        "update_task",
        "delete_task",
        "complete_task",
    }


def test_a_slice_imports_only_itself_and_the_shared_auth_db_and_logging_modules():
    checked = 0
    for slice_dir in _slices():
        own_package = f"features.{slice_dir.parent.name}.{slice_dir.name}"
        for source in slice_dir.glob("*.py"):
            for module in _imported_modules(source):
                checked += 1
                if module.startswith("features."):
                    assert module.startswith(own_package + "."), f"{source}: imports {module}"
                if module == "shared" or module.startswith("shared."):
                    assert module in ALLOWED_SHARED_MODULES, f"{source}: imports {module}"
    assert checked > 20


def test_every_slice_has_an_endpoint_and_task_slices_a_query():
    for slice_dir in _slices():
        assert (slice_dir / "endpoint.py").is_file(), slice_dir
        if slice_dir.parent.name == "tasks":
            assert (slice_dir / "query.py").is_file(), slice_dir


def test_every_slice_is_registered_exactly_once():
    registered = [router.routes[0].endpoint.__module__ for router in TASK_ROUTERS + PUBLIC_ROUTERS]
    expected = [f"features.{path.parent.name}.{path.name}.endpoint" for path in _slices()]

    assert expected
    assert sorted(registered) == sorted(expected)


def test_every_slice_has_a_mirroring_test_folder():
    for slice_dir in _slices():
        test_dir = ROOT / "tests" / "features" / slice_dir.parent.name / slice_dir.name
        assert (test_dir / f"test_{slice_dir.name}.py").is_file(), test_dir


def test_a_task_slice_route_lives_under_the_owners_tasks():
    routes = [route for router in TASK_ROUTERS for route in router.routes]

    assert len(routes) == 6
    for route in routes:
        assert route.path.startswith("/api/{user_id}/tasks"), route.path
        assert route.operation_id == route.endpoint.__name__
        assert route.endpoint.__module__.split(".")[2] == route.operation_id
