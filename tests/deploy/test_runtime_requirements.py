"""`make run` installs requirements.txt only (requirements-dev.txt is for tests and tools): every package the
project's own code imports must come with it, directly or as a dependency of one that does. seed_demo once
imported statsmodels, a dev-only package, and `make run` failed on a fresh clone."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
OWN = {"marketplace", "exchange", "synthex_client"}


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def _installed_with(requirements: list[Requirement]) -> set[str]:
    """The distributions pip installs for ``requirements``: each one with its extras, and what they require."""
    seen: set[str] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in requirements]
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for item in map(Requirement, requires):
            if item.marker is None or any(item.marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append((canonicalize_name(item.name), frozenset(item.extras)))
    return seen


def _imported_modules() -> dict[str, set[str]]:
    """Top-level module → the project files importing it (lazily imported ones included)."""
    found: dict[str, set[str]] = {}
    for root in ("marketplace", "exchange"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_package_the_code_imports_is_a_runtime_requirement() -> None:
    installed = _installed_with(_requirements(REPO / "requirements.txt"))
    distributions = metadata.packages_distributions()
    missing = {
        module: sorted(files)
        for module, files in _imported_modules().items()
        if not any(canonicalize_name(d) in installed for d in distributions.get(module, [module]))
    }
    assert missing == {}
