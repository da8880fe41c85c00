"""The modules of ``deployments`` import one another without a circle: every module-level and function-level
import is an edge, and the graph they draw has no cycle (a circle hidden in a function is still a circle)."""

import ast
from pathlib import Path

import deployments

PACKAGE = "deployments"
ROOT = Path(deployments.__file__).parent


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(name: str, modules: set[str]) -> str | None:
    """The deployments module that ``name`` (a module, or a name inside one) refers to."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported(path: Path, modules: set[str]) -> set[str]:
    """Every deployments module that the file at ``path`` imports, wherever in the file the import is."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from deployments import engine`` imports the module deployments.engine.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = resolve(name, modules)
            if target is not None and target != this:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in ROOT.rglob("*.py") if "migrations" not in path.parts}
    modules = set(files)
    graph = {name: imported(path, modules) for name, path in files.items()}
    # A package's __init__ is run by importing any module inside it: that is not an edge of the circle.
    return {
        name: {target for target in targets if not name.startswith(target + ".")} for name, targets in graph.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (the first repeated at the end), or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_the_deployments_modules_import_one_another_without_a_circle():
    # given every deployments module and what it imports
    graph = import_graph()
    assert "deployments.engine.advance" in graph
    assert "deployments.services" in graph

    # when a circle is looked for
    cycle = find_cycle(graph)

    # then there is none
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_a_circle_is_reported_module_by_module():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
