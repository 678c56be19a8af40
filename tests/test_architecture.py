"""The slice rules, checked on the source: each test first proves it found something to check.

Slices are found twice, in `features/registry.py` and in the folders under `features/`, and the
two must agree: a slice folder that is not registered, or a registered router whose slice has no
folder of its own, fails here, and so does a slice that imports another.
"""

import ast
from pathlib import Path

from fastapi.routing import APIRoute

from features.registry import PUBLIC_ROUTERS, TASK_ROUTERS
from tests.routes import ROUTES, TASK_ROUTES

ROOT = Path(__file__).resolve().parents[1]
SLICE_GROUPS = ROOT / "features"
ALLOWED_SHARED_MODULES = {"shared.auth", "shared.db", "shared.logging"}


def _slice_folders() -> list[Path]:
    return sorted(
        path
        for group in SLICE_GROUPS.iterdir()
        if group.is_dir() and not group.name.startswith("__")
        for path in group.iterdir()
        if path.is_dir() and not path.name.startswith("__")
    )


def _registered_slices() -> list[Path]:
    """The folder of each registered router's slice, once per router."""
    folders = []
    for router in PUBLIC_ROUTERS + TASK_ROUTERS:
        routes = [route for route in router.routes if isinstance(route, APIRoute)]
        modules = {route.endpoint.__module__ for route in routes}
        assert len(modules) == 1, f"one router, one slice: {sorted(modules)}"
        package = modules.pop().rsplit(".", 1)[0]
        folders.append(ROOT.joinpath(*package.split(".")))
    return folders


def _slices() -> list[Path]:
    """Every slice, registered or only present as a folder."""
    return sorted(set(_slice_folders()) | set(_registered_slices()))


def _package(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parts)


def _imported_modules(source: Path) -> set[str]:
    """Every module the file imports, relative imports resolved against its package."""
    package = _package(source.parent).split(".")
    modules = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.module is None:
                # `from .. import other_slice` names modules in its list, not in `module`.
                modules.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                modules.add(module)
    return modules


def test_slices_are_found_in_the_registry_and_in_the_folders():
    folders = _slice_folders()
    registered = _registered_slices()

    assert len(folders) >= 2, folders
    assert len(registered) >= 2, registered
    assert {folder.parent.name for folder in folders} >= {"tasks", "health"}


def test_every_slice_folder_is_registered_exactly_once():
    registered = _registered_slices()

    assert registered
    for folder in _slice_folders():
        count = registered.count(folder)
        assert count == 1, (
            f"{_package(folder)} is registered {count} times: each slice's router is one line "
            "in features/registry.py"
        )
    for folder in registered:
        assert folder in _slice_folders(), (
            f"{_package(folder)} is registered but is not a slice folder under features/<group>/"
        )


def test_a_slice_imports_only_itself_and_the_shared_auth_db_and_logging_modules():
    checked_slices = set()
    for slice_dir in _slices():
        own_package = _package(slice_dir)
        for source in slice_dir.glob("*.py"):
            for module in _imported_modules(source):
                checked_slices.add(slice_dir)
                if module == "features" or module.startswith("features."):
                    assert module.startswith(own_package + "."), f"{source}: imports {module}"
                if module == "shared" or module.startswith("shared."):
                    assert module in ALLOWED_SHARED_MODULES, f"{source}: imports {module}"
    assert checked_slices == set(_slices()), "a slice without imports was not checked"
    assert len(checked_slices) >= 2


def test_every_slice_has_an_endpoint_and_task_slices_a_query():
    slices = _slices()

    assert slices
    for slice_dir in slices:
        assert (slice_dir / "endpoint.py").is_file(), slice_dir
        if slice_dir.parent.name == "tasks":
            assert (slice_dir / "query.py").is_file(), slice_dir


def test_every_slice_has_a_mirroring_test_folder():
    slices = _slices()

    assert slices
    for slice_dir in slices:
        test_dir = ROOT / "tests" / "features" / slice_dir.parent.name / slice_dir.name
        assert (test_dir / f"test_{slice_dir.name}.py").is_file(), test_dir


def test_each_route_is_named_after_its_slice():
    assert ROUTES
    for route in ROUTES:
        assert route.endpoint_module.split(".")[2] == route.operation_id, route.operation_id
        assert route.endpoint_name == route.operation_id, route.operation_id


def test_a_task_slice_route_lives_under_the_owners_tasks():
    task_slices = {path.name for path in _slices() if path.parent.name == "tasks"}

    assert task_slices
    assert {route.operation_id for route in TASK_ROUTES} == task_slices
    for route in TASK_ROUTES:
        assert route.path.startswith("/api/{user_id}/tasks"), route.path
