"""Layers and the import graph of what is deployed: `main.py` → `functions/` → `shared/`.

Every import counts, at module level or inside a function (a lazy import is still a
dependency): the graph has no cycles, `shared/` never imports `functions/`, and
nothing deployed imports the local tooling (`infra/`), the tests or the benchmarks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from shared.config import REPO_ROOT

DEPLOYED_PACKAGES = ("functions", "shared")
LOCAL_ONLY = ("infra", "tests", "bench")


def _deployed_modules() -> dict[str, Path]:
    modules = {"main": REPO_ROOT / "main.py"}
    for package in DEPLOYED_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, excluding `if __name__ == "__main__":`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    script_blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and "__main__" in ast.unparse(node.test)
        and "__name__" in ast.unparse(node.test)
    ]
    skipped = {id(inner) for block in script_blocks for inner in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix, node.lineno
            for alias in node.names:  # `from functions import runs` imports the module functions.runs
                yield f"{prefix}.{alias.name}", node.lineno


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _deployed_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    foreign: list[str] = []
    for name, path in modules.items():
        for imported, line in _imports(name, path):
            top = imported.split(".")[0]
            if top in LOCAL_ONLY:
                foreign.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {imported}")
            if name.startswith(imported + "."):
                continue  # a module's own parent packages: Python initialises them first, not a dependency
            if imported in modules and imported != name:
                graph[name].add(imported)
    return graph, foreign


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_nothing_deployed_imports_local_tooling_or_tests() -> None:
    _, foreign = _graph()
    assert foreign == []


def test_the_import_graph_of_what_is_deployed_has_no_cycles() -> None:
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_shared_never_imports_functions_and_functions_never_imports_main() -> None:
    graph, _ = _graph()
    upward = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if (source.startswith("shared") and target.split(".")[0] in ("functions", "main"))
        or (source.startswith("functions") and target == "main")
    ]
    assert upward == []


def test_the_checker_sees_lazy_imports_and_cycles() -> None:
    """The graph walk is not vacuous: a lazy import inside a function is an edge, and a loop is found."""
    assert "functions.wiring" in _graph()[0]["functions.pipeline"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _web_imports(graph: dict[str, set[str]], foreign: dict[str, list[str]]) -> list[str]:
    """Imports of the web framework, or of the web package, by a module of the read side."""
    found = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if source.startswith("functions.read") and target.startswith("functions.api")
    ]
    found += [
        f"{source} imports {name}"
        for source, names in foreign.items()
        if source.startswith("functions.read")
        for name in names
        if name.split(".")[0] in ("flask", "werkzeug", "jinja2")
    ]
    return sorted(found)


def _third_party_imports() -> dict[str, list[str]]:
    return {
        name: [imported for imported, _ in _imports(name, path)] for name, path in _deployed_modules().items()
    }


def test_the_read_side_imports_no_web_framework_and_not_the_web_package() -> None:
    """functions/read/ is the read model: Flask, werkzeug, jinja2 and functions.api stay out of it."""
    graph, _ = _graph()
    assert any(name.startswith("functions.read.") for name in graph), "the read side is in the graph"
    assert _web_imports(graph, _third_party_imports()) == []
    # the check is not vacuous: a read-side module importing flask or the web package is caught
    assert _web_imports({"functions.read.x": {"functions.api.app"}}, {"functions.read.y": ["flask"]}) == [
        "functions.read.x imports functions.api.app",
        "functions.read.y imports flask",
    ]
