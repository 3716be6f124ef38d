"""Every package imports on its own, and no two modules import each other, even in a circle.

The import graph is read from the source with :mod:`ast` (nothing is executed):
one node per module, one arrow per import, wherever it stands (the top, a
function, ``if TYPE_CHECKING:``), and an arrow to each package whose
``__init__`` an import runs first (``from dialer.catalog import X`` runs
``dialer/__init__.py``). A circle of arrows fails the test and is shown module
by module, with the line of each import.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Circles allowed, each only as long as it stays within its modules: none.
ALLOWED_CIRCLES: dict[frozenset[str], str] = {}

ABOVE_THE_ENGINE = ("engine", "commands", "bus", "ops", "demo", "center")
# (package, the project's packages it must not import; None: none at all)
LAYERS: list[tuple[str, tuple[str, ...] | None]] = [
    ("yamlfile", None),  # a leaf
    ("sqlitefile", None),  # a leaf
    ("people", None),  # a leaf: the console's users, roles, the audit trail's entries
    ("audio", ("softphone", "dialer", "hotline", "texts", "engine", "commands", "stores")),
    ("sip_config", ("dialer", "hotline", "texts", "settings", "engine", "commands")),  # no arrow up
    ("hotline", ABOVE_THE_ENGINE + ("stores",)),  # pure flows: the engine wires them
    ("dialer", ABOVE_THE_ENGINE + ("stores", "texts")),  # pure, but for nothing
    ("texts", ABOVE_THE_ENGINE + ("stores",)),
    ("stores", ABOVE_THE_ENGINE + ("settings",)),  # the domain's records, not its wiring
    ("softphone", ("dialer", "hotline", "texts", "engine", "commands", "stores", "center")),
    ("front", ABOVE_THE_ENGINE),
    ("center", ("engine", "commands", "bus", "ops", "demo")),  # the service layer: below them
]

Graph = dict[str, dict[str, int]]  # module → the modules it imports → the line of the first


def project_packages(root: Path = ROOT) -> list[str]:
    """The top-level packages pyproject.toml installs (``[tool.setuptools.packages.find]``)."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    names = [pattern.rstrip("*").rstrip(".") for pattern in patterns]
    return sorted(n for n in names if (root / n / "__init__.py").is_file())


def module_files(root: Path, packages: list[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root`` by its dotted name (a package by its
    ``__init__``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported(module: str, is_package: bool, tree: ast.AST,
              known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(a dotted name ``module`` imports, the line), for every import in ``tree``."""
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                base_name = ".".join([*base, node.module] if node.module else base)
            else:
                base_name = node.module or ""
            for alias in node.names:
                name = f"{base_name}.{alias.name}"  # a module, or a name in one
                yield (name if name in known else base_name), node.lineno


def import_graph(known: dict[str, Path]) -> Graph:
    """The arrows between the modules of ``known`` (imports of other code are left out)."""
    graph: Graph = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        arrows = graph.setdefault(module, {})
        for name, line in _imported(module, path.name == "__init__.py", tree, known):
            parts = name.split(".")
            targets = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            for target in targets:
                if target not in known or target == module:
                    continue
                # the packages above the importer have run (or are running) already
                if target != name and module.startswith(target + "."):
                    continue
                arrows.setdefault(target, line)
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def one_circle(graph: Graph, group: list[str]) -> str:
    """A circle through the group's first module, as ``a (line 3) -> b (line 9) -> a``."""
    members, start = set(group), group[0]
    paths: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [*paths[node], start]
                steps = [f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(path)]
                return " -> ".join([*steps, start])
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    return ", ".join(group)


def unexpected_circles(graph: Graph) -> list[str]:
    return [one_circle(graph, group) for group in circles(graph)
            if not any(set(group) <= allowed for allowed in ALLOWED_CIRCLES)]


# --------------------------------------------------------------------- the project


PACKAGES = project_packages()


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(module_files(ROOT, PACKAGES))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_imports_in_a_fresh_interpreter(package: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_no_import_circle_between_modules(graph: Graph) -> None:
    assert "sip_config.load" in graph and "engine.core" in graph  # the graph is the project's
    found = unexpected_circles(graph)
    assert not found, "import circle(s):\n" + "\n".join(found)


@pytest.mark.parametrize(("package", "above"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_lower_layers_import_nothing_above_them(graph: Graph, package: str,
                                                above: tuple[str, ...] | None) -> None:
    wrong = [f"{module} imports {target} (line {line})"
             for module, arrows in graph.items() if module.split(".")[0] == package
             for target, line in arrows.items()
             if target.split(".")[0] != package
             and (above is None or target.split(".")[0] in above)]
    assert not wrong, wrong


# --------------------------------------------------------------------- the checker itself


# (files of a package "pkg", the circles found)
CASES: list[tuple[dict[str, str], list[list[str]]]] = [
    ({"__init__.py": "", "a.py": "import pkg.b\n", "b.py": "X = 1\n"}, []),
    ({"__init__.py": "", "a.py": "from pkg.b import X\n", "b.py": "from pkg.a import Y\n"},
     [["pkg.a", "pkg.b"]]),
    ({"__init__.py": "", "a.py": "from . import b\n",
      "b.py": "def f() -> None:\n    from .a import Y\n"}, [["pkg.a", "pkg.b"]]),
    ({"__init__.py": "", "a.py": "from .b import X\n",
      "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import Y\n"},
     [["pkg.a", "pkg.b"]]),
    # a package's __init__ re-exporting its modules is no circle...
    ({"__init__.py": "from .a import X\n", "a.py": "from .b import X\n", "b.py": "X = 1\n"}, []),
    # ...but a module that imports its own package's __init__ back is
    ({"__init__.py": "from .a import X\n", "a.py": "from pkg import Y\n"},
     [["pkg", "pkg.a"]]),
    ({"__init__.py": "", "sub/__init__.py": "from pkg.a import X\n",
      "a.py": "from pkg.sub.c import Y\n", "sub/c.py": "Y = 1\n"}, [["pkg.a", "pkg.sub"]]),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_the_checker_finds_circles(tmp_path: Path, files: dict[str, str],
                                   expected: list[list[str]]) -> None:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    found = circles(import_graph(module_files(tmp_path, ["pkg"])))
    assert found == expected


def test_a_circle_is_shown_with_its_lines() -> None:
    graph: Graph = {"p.a": {"p.b": 3}, "p.b": {"p.c": 5}, "p.c": {"p.a": 9}}
    assert one_circle(graph, ["p.a", "p.b", "p.c"]) == \
        "p.a (line 3) -> p.b (line 5) -> p.c (line 9) -> p.a"
