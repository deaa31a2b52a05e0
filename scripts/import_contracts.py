"""Two import-linter contract types that the built-in ones cannot express (see [tool.importlinter]).

- ``cross_package_cycles``: no cycle of module imports runs through two domain packages. Cycles inside one
  package (a service that enqueues its own app's task, which calls the service) are the package's business;
  a cycle between packages means neither can be understood, tested or moved without the other.
- ``private_names``: no module imports another module's private names (``from x import _helper``); a helper
  two modules need is a named public function in the module where it belongs.

Both take ``ignore_imports`` (``importer -> imported``) for the known exceptions that are still to be removed.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.domain.helpers import module_expressions_to_modules


def _container_of(module: str, containers: set[str]) -> str | None:
    for container in containers:
        if module == container or module.startswith(container + "."):
            return container
    return None


def _reachable(adjacency: dict[str, set[str]], start: str) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for successor in adjacency[frontier.pop()]:
            if successor not in seen:
                seen.add(successor)
                frontier.append(successor)
    return seen


def _cycles(adjacency: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (a few hundred modules: reachability from
    each module is quick enough and plain to read)."""
    reaches = {module: _reachable(adjacency, module) for module in adjacency}
    components: list[list[str]] = []
    placed: set[str] = set()
    for module in sorted(adjacency):
        if module in placed:
            continue
        component = sorted(other for other in reaches[module] if module in reaches[other])
        placed.update(component)
        if len(component) > 1:
            components.append(component)
    return components


class CrossPackageCyclesContract(Contract):
    """No import cycle between the modules of two different ``containers`` (module expressions such as
    ``marketplace.*``: each match is one domain package)."""

    type_name = "cross_package_cycles"

    containers = fields.SetField(subfield=fields.ModuleExpressionField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=contract_utils.AlertLevel.ERROR,
        )
        containers = {
            module.name
            for module in module_expressions_to_modules(graph, self.containers)  # type: ignore[arg-type]
        }
        modules = {module for module in graph.modules if _container_of(module, containers)}
        adjacency = {
            module: {
                imported
                for imported in graph.find_modules_directly_imported_by(module)
                if imported in modules
            }
            for module in modules
        }
        cycles = []
        for component in _cycles(adjacency):
            packages = {_container_of(module, containers) for module in component}
            if len(packages) > 1:
                members = set(component)
                crossing = sorted(
                    (importer, imported)
                    for importer in component
                    for imported in adjacency[importer] & members
                    if _container_of(importer, containers) != _container_of(imported, containers)
                )
                cycles.append({"packages": sorted(packages), "modules": component, "crossing": crossing})
        return ContractCheck(
            kept=not cycles,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"cycles": cycles},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"A cycle runs through {', '.join(cycle['packages'])}:")
            output.new_line()
            for importer, imported in cycle["crossing"]:
                output.print_error(f"- {importer} -> {imported}", bold=False)
            output.new_line()


def _module_file(module: str) -> Path | None:
    for root in map(Path, sys.path):
        base = root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class PrivateNamesContract(Contract):
    """No module of ``packages`` imports a private name (``_x``) from another module of ``packages``."""

    type_name = "private_names"

    packages = fields.SetField(subfield=fields.ModuleExpressionField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=contract_utils.AlertLevel.ERROR,
        )
        roots = {
            module.name
            for module in module_expressions_to_modules(graph, self.packages)  # type: ignore[arg-type]
        }
        internal = {module for module in graph.modules if _container_of(module, roots)}
        found = []
        for importer in sorted(internal):
            path = _module_file(importer)
            if path is None:
                continue
            kept = graph.find_modules_directly_imported_by(importer)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                if node.module not in internal or node.module == importer or node.module not in kept:
                    continue
                names = [alias.name for alias in node.names if _is_private(alias.name)]
                if names:
                    found.append((importer, node.module, node.lineno, names))
        return ContractCheck(
            kept=not found,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"found": found},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, line, names in check.metadata["found"]:
            output.print_error(f"- {importer}:{line} imports {', '.join(names)} from {imported}", bold=False)
        output.new_line()
